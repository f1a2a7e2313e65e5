#!/usr/bin/python3
"""Print what libtorrent reads from .torrent files, as one JSON list.

usage: lt_read.py FILE...
Each entry has the v1 info-hash ("" for v2-only torrents) and the v2 one
("" for v1 torrents), or "error". Files carry their v2 pieces root in hex
("" without one).
"""
import json
import sys
import warnings

import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)
out = []
for path in sys.argv[1:]:
    try:
        ti = lt.torrent_info(path)
    except Exception as e:  # libtorrent rejects the file
        out.append({"file": path, "error": str(e)})
        continue
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        files.append({
            "path": fs.file_path(i),
            "size": fs.file_size(i),
            "offset": fs.file_offset(i),
            "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file),
            "root": "" if fs.root(i).is_all_zeros() else fs.root(i).to_bytes().hex(),
        })
    tiers = {}
    for t in ti.trackers():
        tiers.setdefault(t.tier, []).append(t.url)
    hashes = ti.info_hashes()
    out.append({
        "file": path,
        "info_hash": str(hashes.v1) if hashes.has_v1() else "",
        "info_hash_v2": hashes.v2.to_bytes().hex() if hashes.has_v2() else "",
        "has_v1": hashes.has_v1(),
        "has_v2": hashes.has_v2(),
        "name": ti.name(),
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
        "private": ti.priv(),
        "comment": ti.comment(),
        "creator": ti.creator(),
        # libtorrent shuffles each tier (BEP 12); sort for stable output.
        "trackers": [sorted(tiers[k]) for k in sorted(tiers)],
        "web_seeds": [w["url"] for w in ti.web_seeds()],
        "files": files,
    })
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
