# lt_seed_v2.py DIR: seed a small v2-only torrent (BEP 52) from DIR on
# 127.0.0.1 with libtorrent. Its one file spans several 64 KiB pieces of 4
# blocks each. Prints one line "v2_infohash_hex port piece_length
# file_length pieces_root_hex" once seeding, then runs until stdin closes.
# Used by TestInteropLibtorrentV2; loopback only.
import os
import sys
import time

import libtorrent as lt

root = sys.argv[1]
piece_len = 64 * 1024
data = bytes((i * 7 + i // 251) & 0xFF for i in range(5 * piece_len + 1000))
path = os.path.join(root, "payload.bin")
with open(path, "wb") as f:
    f.write(data)

fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, piece_len, flags=lt.create_torrent.v2_only)
lt.set_piece_hashes(ct, root)
ti = lt.torrent_info(ct.generate())

ses = lt.session({
    "listen_interfaces": "127.0.0.1:0",
    "enable_dht": False,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "outgoing_interfaces": "127.0.0.1",
})
atp = lt.add_torrent_params()
atp.ti = ti
atp.save_path = root
h = ses.add_torrent(atp)

deadline = time.time() + 20
while not h.status().is_seeding:
    if time.time() > deadline:
        sys.exit("libtorrent did not start seeding")
    time.sleep(0.05)

files = ti.files()
print(ti.info_hashes().v2.to_bytes().hex(), ses.listen_port(), ti.piece_length(),
      files.file_size(0), files.root(0).to_bytes().hex(), flush=True)
sys.stdin.read()
