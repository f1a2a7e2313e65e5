# lt_seed.py DIR: seed a small v1 torrent from DIR on 127.0.0.1 with libtorrent.
# Prints one line "infohash_hex port num_pieces piece_length" once seeding, then
# runs until stdin closes. Used by TestInteropLibtorrent; loopback only.
import os
import sys
import time

import libtorrent as lt

root = sys.argv[1]
piece_len = 16 * 1024
data = bytes((i * 7 + i // 251) & 0xFF for i in range(5 * piece_len + 1000))
path = os.path.join(root, "payload.bin")
with open(path, "wb") as f:
    f.write(data)

fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, piece_len, flags=lt.create_torrent.v1_only)
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
atp.flags = lt.torrent_flags.seed_mode
h = ses.add_torrent(atp)

deadline = time.time() + 20
while not h.status().is_seeding:
    if time.time() > deadline:
        sys.exit("libtorrent did not start seeding")
    time.sleep(0.05)

print(str(ti.info_hash()), ses.listen_port(), ti.num_pieces(), ti.piece_length(), flush=True)
sys.stdin.read()
