# lt_webseed.py TORRENT SAVE_DIR TIMEOUT_S: download TORRENT with libtorrent
# from its url-list web seeds only (no peers, DHT, LSD or port mapping) and
# print one JSON line: {"done": bool, "progress": float, "errors": [...]}.
#
# Run by the webseed package's tests with /usr/bin/python3 (Debian's
# python3-libtorrent) to check that our BEP 19 URLs are the ones libtorrent
# asks for.

import json
import sys
import time

import libtorrent as lt


def main():
    path, save, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.error_notification,
    })
    h = ses.add_torrent({"ti": lt.torrent_info(path), "save_path": save})
    errors = []
    deadline = time.monotonic() + timeout
    st = h.status()
    while time.monotonic() < deadline:
        for a in ses.pop_alerts():
            errors.append(a.message())
        st = h.status()
        if st.is_seeding:
            break
        time.sleep(0.05)
    print(json.dumps({"done": bool(st.is_seeding), "progress": st.progress, "errors": errors[-10:]}))


main()
