#!/usr/bin/python3
"""Make a .torrent with libtorrent, for golden fixtures (see golden_test.go).

usage: lt_make.py SPEC_JSON...
SPEC_JSON: {"src": path, "out": path, "mode": "v1"|"hybrid"|"v2",
            "piece_size": int, "trackers": [[url, ...], ...],
            "web_seeds": [url, ...], "comment": str, "private": bool}
One torrent per SPEC_JSON.
"""
import json
import os
import sys

import libtorrent as lt


def make(spec):
    fs = lt.file_storage()
    lt.add_files(fs, spec["src"])
    flags = {"v1": lt.create_torrent.v1_only, "hybrid": 0, "v2": lt.create_torrent.v2_only}[spec["mode"]]
    ct = lt.create_torrent(fs, spec["piece_size"], flags=flags)
    for tier, urls in enumerate(spec.get("trackers", [])):
        for url in urls:
            ct.add_tracker(url, tier)
    for url in spec.get("web_seeds", []):
        ct.add_url_seed(url)
    if spec.get("comment"):
        ct.set_comment(spec["comment"])
    ct.set_creator("libtorrent fixture")
    ct.set_priv(bool(spec.get("private")))
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(spec["src"])))
    entry = ct.generate()
    entry.pop(b"creation date", None)  # keep fixtures reproducible
    with open(spec["out"], "wb") as f:
        f.write(lt.bencode(entry))


for arg in sys.argv[1:]:
    make(json.loads(arg))
