# ltpeer.py: one libtorrent session driven by JSON lines, for swarmtest.
#
# Run by swarmtest with /usr/bin/python3 (the interpreter that has Debian's
# python3-libtorrent). Two modes:
#
#   ltpeer.py make CONFIG_JSON   create a .torrent, print one JSON line, exit
#   ltpeer.py peer CONFIG_JSON   run a session: print {"ready":..,"port":..}
#                                once listening, then answer one JSON line on
#                                stdout for each JSON line read on stdin
#
# Every request carries "id" and "cmd"; every answer carries the same "id" and
# either "ok": true plus results, or "error": "text". Diagnostics (alerts) go
# to stderr, which swarmtest shows in the test log when the test fails.
# End of stdin ends the process at once (os._exit: no tracker "stopped"
# announces, no waiting).

import json
import os
import select
import socket
import sys
import time
import warnings

import libtorrent as lt


def log(*args):
    sys.stderr.write("%.3f ltpeer: %s\n" % (time.monotonic(), " ".join(str(a) for a in args)))
    sys.stderr.flush()


def hostport(ip, port):
    """ip:port, with an IPv6 address in brackets."""
    if ":" in ip:
        return "[%s]:%d" % (ip, port)
    return "%s:%d" % (ip, port)


def hexhash(h):
    return str(h)


def name(ihs):
    """The 20-byte hex name of a torrent, as swarmfs names it: the v1
    info-hash, or for a v2-only torrent the v2 one truncated (libtorrent's
    get_best prefers v2 for a hybrid)."""
    if ihs.has_v1():
        return str(ihs.v1)
    return str(ihs.v2)[:40]


FORMATS = {
    "v1": lt.create_torrent.v1_only,
    "v2": lt.create_torrent.v2_only,
    "hybrid": 0,
}


def make(cfg):
    """Create a torrent for cfg["data"], write it to cfg["out"]."""
    data = os.path.abspath(cfg["data"])
    fs = lt.file_storage()
    lt.add_files(fs, data)
    if fs.num_files() == 0:
        raise ValueError("no files under %s" % data)
    flags = FORMATS[cfg.get("format") or "v1"]
    ct = lt.create_torrent(fs, cfg.get("piece_length", 0), flags=flags)
    for tier, urls in enumerate(cfg.get("trackers") or []):
        for url in urls:
            ct.add_tracker(url, tier)
    ct.set_creator("swarmfs swarmtest")
    lt.set_piece_hashes(ct, os.path.dirname(data))
    buf = lt.bencode(ct.generate())
    with open(cfg["out"], "wb") as f:
        f.write(buf)
    ti = lt.torrent_info(cfg["out"])
    return {
        "info_hash": name(ti.info_hashes()),
        "info_hash_v2": str(ti.info_hashes().v2) if ti.info_hashes().has_v2() else "",
        "piece_length": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "total_size": ti.total_size(),
        "num_files": ti.num_files(),
    }


# peer_info::utp_socket (bit 17 of peer_flags_t); the Python binding 2.0.8
# does not name it.
UTP_SOCKET = 1 << 17

STATES = {
    lt.torrent_status.states.checking_files: "checking_files",
    lt.torrent_status.states.downloading_metadata: "downloading_metadata",
    lt.torrent_status.states.downloading: "downloading",
    lt.torrent_status.states.finished: "finished",
    lt.torrent_status.states.seeding: "seeding",
    lt.torrent_status.states.checking_resume_data: "checking_resume_data",
}


class Peer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.torrents = {}  # name (see name()) -> {"handle", "added", "finished"}
        self.stats = None  # the last session_stats_alert's values
        ip = cfg["ip"]
        port = cfg.get("port", 0)
        ips = [ip] + list(cfg.get("also_ips") or [])
        iface = ",".join(hostport(a, port) for a in ips)
        s = {
            "listen_interfaces": iface,
            # A busy port is an error, not a hint to try the next ones.
            "max_retry_port_bind": 0,
            "listen_system_port_fallback": False,
            # Outgoing peer connections (and so what trackers and peers see
            # as our address) come from our own loopback address.
            "outgoing_interfaces": ",".join(ips),
            "enable_lsd": bool(cfg.get("lsd")),
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_ip_notifier": False,
            "enable_dht": bool(cfg.get("dht")),
            # TCP only: swarmfs speaks TCP first; a uTP connection would
            # bypass it.
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "allow_multiple_connections_per_ip": True,
            "announce_to_all_tiers": True,
            "announce_to_all_trackers": True,
            "prefer_udp_trackers": False,
            "alert_mask": (lt.alert.category_t.error_notification
                           | lt.alert.category_t.status_notification
                           | lt.alert.category_t.tracker_notification
                           | lt.alert.category_t.storage_notification
                           | lt.alert.category_t.connect_notification
                           | lt.alert.category_t.peer_notification
                           | lt.alert.category_t.dht_notification
                           | lt.alert.category_t.dht_operation_notification
                           | lt.alert.category_t.ip_block_notification),
            "alert_queue_size": 10000,
            "upload_rate_limit": int(cfg.get("upload_rate", 0)),
            "download_rate_limit": int(cfg.get("download_rate", 0)),
            # Loopback is a "local network": without this (and the peer class
            # filter below) libtorrent ignores the rate limits.
            "ignore_limits_on_local_network": False,
            "rate_limit_ip_overhead": False,
            # Start fast, reconnect fast.
            "smooth_connects": False,
            "connection_speed": 200,
            "min_reconnect_time": 1,
            "peer_connect_timeout": 5,
            "torrent_connect_boost": 100,
            "stop_tracker_timeout": 1,
            "tracker_completion_timeout": 10,
            "min_announce_interval": 5,
            "auto_manage_startup": 0,
            # The session tick drives connection attempts (a ConnectPeer
            # waits for it) and hands out rate-limit quota: 500 ms by
            # default, which makes starts and limited rates lumpy.
            "tick_interval": 100,
            # Never the default (dht.libtorrent.org): bootstrap nodes are
            # added as ordinary nodes below, so they also count in the
            # routing table (libtorrent keeps "router" nodes out of it).
            "dht_bootstrap_nodes": "",
            # Loopback DHT: every node is on 127.x, so relax the checks that
            # exist against Sybil attacks on the real internet.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_enforce_node_id": False,
            "dht_prefer_verified_node_ids": False,
            "dht_ignore_dark_internet": False,
            # Both are rates; 0 would block every node / every reply.
            "dht_block_ratelimit": 10000,
            "dht_upload_rate_limit": 1 << 20,
            # Torrents announce themselves to the DHT this often (seconds).
            "dht_announce_interval": 5,
        }
        if cfg.get("fingerprint"):
            s["peer_fingerprint"] = cfg["fingerprint"]
        if cfg.get("utp_only"):
            s["enable_outgoing_utp"] = True
            s["enable_incoming_utp"] = True
            s["enable_outgoing_tcp"] = False
            s["enable_incoming_tcp"] = False
        if cfg.get("encryption"):
            policy = int(getattr(lt.enc_policy, cfg["encryption"]))
            s["out_enc_policy"] = policy
            s["in_enc_policy"] = policy
        if cfg.get("enc_level"):
            s["allowed_enc_level"] = int(getattr(lt.enc_level, cfg["enc_level"]))
        self.ses = lt.session(s)
        # Put every address in the global (rate limited) class: by default
        # 127/8 and the private ranges are in the unlimited "local" class.
        f = lt.ip_filter()
        mask = (1 << lt.session.global_peer_class_id) | (1 << lt.session.tcp_peer_class_id)
        f.add_rule("0.0.0.0", "255.255.255.255", mask)
        f.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", mask)
        self.ses.set_peer_class_filter(f)
        for node in cfg.get("dht_bootstrap") or []:
            host, port = node.rsplit(":", 1)
            self.ses.add_dht_node((host.strip("[]"), int(port)))

    def wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        tcp = False
        udp = False
        while time.monotonic() < deadline:
            self.ses.wait_for_alert(100)
            for a in self.ses.pop_alerts():
                log("alert", type(a).__name__, a.message())
                if isinstance(a, lt.listen_succeeded_alert):
                    if a.socket_type == lt.socket_type_t.tcp:
                        tcp = True
                    elif a.socket_type == lt.socket_type_t.udp or a.socket_type == lt.socket_type_t.utp:
                        udp = True
                elif isinstance(a, lt.listen_failed_alert):
                    raise RuntimeError("listen failed: " + a.message())
            if tcp and udp:
                return self.ses.listen_port()
        raise RuntimeError("not listening after %ss" % timeout)

    def note_peers(self):
        """Remember each connection's payload counters: libtorrent forgets
        them when the connection closes. Called on every request and alert
        wake-up, so what is lost is at most what flowed since the last one."""
        for t in self.torrents.values():
            for p in t["handle"].get_peer_info():
                # A closing connection reports local port 0: it is still
                # the connection last seen under its remote address.
                local = p.local_endpoint[1] or t["local"].get((p.ip[0], p.ip[1]), 0)
                t["local"][(p.ip[0], p.ip[1])] = local
                key = (p.ip[0], p.ip[1], local)
                d, u = t["conns"].get(key, (0, 0))
                t["conns"][key] = (max(d, p.total_download), max(u, p.total_upload))

    def pump(self):
        self.note_peers()
        for a in self.ses.pop_alerts():
            msg = a.message()
            if isinstance(a, lt.session_stats_alert):
                self.stats = dict(a.values)
                continue
            if isinstance(a, lt.torrent_finished_alert):
                # By handle: a btmh magnet's torrent turns out a hybrid
                # once its metadata is in, and its name() changes.
                for t in self.torrents.values():
                    if t["handle"] == a.handle and t["finished"] is None:
                        t["finished"] = time.monotonic()
            log("alert", type(a).__name__, msg)

    def find(self, req):
        ih = req["info_hash"]
        t = self.torrents.get(ih)
        if t is None:
            raise KeyError("unknown torrent " + ih)
        return t

    def params(self, req):
        flags = lt.torrent_flags.default_flags
        flags &= ~lt.torrent_flags.auto_managed
        flags &= ~lt.torrent_flags.paused
        if req.get("seed") and self.cfg.get("seed_mode"):
            flags |= lt.torrent_flags.seed_mode
        if req.get("super_seed"):
            flags |= lt.torrent_flags.super_seeding
        if req.get("upload_mode"):
            flags |= lt.torrent_flags.upload_mode
        return flags

    def add(self, atp, ih):
        if ih in self.torrents:
            raise ValueError("torrent %s already added" % ih)
        now = time.monotonic()
        h = self.ses.add_torrent(atp)
        # conns: (ip, port, local port), a TCP connection, -> the highest payload totals seen on
        # that connection, kept after it closes (see note_peers).
        self.torrents[ih] = {"handle": h, "added": now, "finished": None, "conns": {}, "local": {}}
        return {"info_hash": ih}

    def cmd_add_torrent(self, req):
        with open(req["torrent"], "rb") as f:
            raw = f.read()
        if self.cfg.get("no_trackers"):
            d = lt.bdecode(raw)
            d.pop(b"announce", None)
            d.pop(b"announce-list", None)
            raw = lt.bencode(d)
        ti = lt.torrent_info(lt.bdecode(raw))
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = req["save"]
        atp.flags = self.params(req)
        return self.add(atp, name(ti.info_hashes()))

    def cmd_add_magnet(self, req):
        atp = lt.parse_magnet_uri(req["magnet"])
        if self.cfg.get("no_trackers"):
            atp.trackers = []
        atp.save_path = req["save"]
        atp.flags = self.params(req)
        return self.add(atp, name(atp.info_hashes))

    def cmd_connect_peer(self, req):
        t = self.find(req)
        host, port = req["addr"].rsplit(":", 1)
        t["handle"].connect_peer((host.strip("[]"), int(port)))
        return {}

    def cmd_status(self, req):
        t = self.find(req)
        st = t["handle"].status()
        fin = t["finished"]
        return {
            "state": STATES.get(st.state, str(st.state)),
            "progress": st.progress,
            "is_seeding": st.is_seeding,
            "is_finished": st.is_finished,
            "has_metadata": st.has_metadata,
            "paused": bool(st.flags & lt.torrent_flags.paused),
            "num_peers": st.num_peers,
            "num_seeds": st.num_seeds,
            "download_rate": st.download_payload_rate,
            "upload_rate": st.upload_payload_rate,
            "total_download": st.total_payload_download,
            "total_upload": st.total_payload_upload,
            "total_done": st.total_done,
            "total_wanted": st.total_wanted,
            "all_time_upload": st.all_time_upload,
            "all_time_download": st.all_time_download,
            "error": st.errc.message() if st.errc.value() != 0 else "",
            "finished_after": (fin - t["added"]) if fin is not None else -1,
            "peers": [hostport(p.ip[0], p.ip[1]) for p in t["handle"].get_peer_info()],
            "utp_peers": [hostport(p.ip[0], p.ip[1]) for p in t["handle"].get_peer_info()
                          if int(p.flags) & UTP_SOCKET],
        }

    def cmd_peer_totals(self, req):
        """Payload bytes exchanged with each IP over the torrent's life,
        closed connections included, and the flags of the peers connected
        now."""
        t = self.find(req)
        self.note_peers()
        totals = {}
        for (ip, _port, _local), (d, u) in t["conns"].items():
            cur = totals.setdefault(ip, {"download": 0, "upload": 0})
            cur["download"] += d
            cur["upload"] += u
        peers = []
        for p in t["handle"].get_peer_info():
            peers.append({
                "addr": "%s:%d" % (p.ip[0], p.ip[1]),
                "upload_only": bool(p.flags & lt.peer_info.upload_only),
                "seed": bool(p.flags & lt.peer_info.seed),
                "interesting": bool(p.flags & lt.peer_info.interesting),
                "client": p.client.decode("utf-8", "replace") if isinstance(p.client, bytes) else p.client,
            })
        return {"totals": totals, "peers": peers}

    def cmd_dht_announce(self, req):
        # session.dht_announce is unusable from Python 2.0.8 (its flags type
        # is not exposed), hence the two ways below.
        port = int(req.get("port", 0))
        if port in (0, self.ses.listen_port()):
            t = self.find(req)
            t["handle"].force_dht_announce()
            return {"nodes": -1}
        nodes = cfg_nodes(self.cfg)
        if not nodes:
            raise ValueError("announcing another port needs DHT bootstrap nodes")
        n = krpc_announce(self.cfg["ip"], bytes.fromhex(req["info_hash"]), port, nodes)
        if n == 0:
            raise RuntimeError("no DHT node accepted the announce")
        return {"nodes": n}

    def cmd_dht_nodes(self, req):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # session.status()
            return {"nodes": self.ses.status().dht_nodes}

    def cmd_remove(self, req):
        t = self.find(req)
        self.ses.remove_torrent(t["handle"])
        del self.torrents[req["info_hash"]]
        return {}

    def cmd_session_stats(self, req):
        """The session's counters and gauges (session_stats_metrics names,
        such as utp.utp_packet_loss) whose name starts with a prefix."""
        self.stats = None
        self.ses.post_session_stats()
        deadline = time.monotonic() + 10
        while self.stats is None and time.monotonic() < deadline:
            self.ses.wait_for_alert(100)
            self.pump()
        if self.stats is None:
            raise RuntimeError("no session_stats_alert")
        prefixes = tuple(req.get("prefixes") or [""])
        return {"stats": {k: v for k, v in self.stats.items() if k.startswith(prefixes)}}

    def cmd_set_rates(self, req):
        self.ses.apply_settings({
            "upload_rate_limit": int(req.get("upload_rate", 0)),
            "download_rate_limit": int(req.get("download_rate", 0)),
        })
        return {}

    def handle(self, line):
        try:
            req = json.loads(line)
        except ValueError as e:
            return {"error": "bad request: %s" % e}
        rid = req.get("id")
        fn = getattr(self, "cmd_" + str(req.get("cmd")), None)
        if fn is None:
            return {"id": rid, "error": "unknown command %r" % req.get("cmd")}
        try:
            res = fn(req)
        except Exception as e:  # report, keep serving
            return {"id": rid, "error": "%s: %s" % (type(e).__name__, e)}
        res["id"] = rid
        res["ok"] = True
        return res


def cfg_nodes(cfg):
    out = []
    for node in cfg.get("dht_bootstrap") or []:
        host, port = node.rsplit(":", 1)
        out.append((host.strip("[]"), int(port)))
    return out


def krpc_announce(ip, ih, port, nodes):
    """Announce ip:port for ih to each node with plain KRPC (BEP 5):
    get_peers for a token, then announce_peer. Returns how many accepted."""
    sock = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((ip, 0))
        sock.settimeout(2)
        nid = os.urandom(20)
        ok = 0
        for i, node in enumerate(nodes):
            def query(q, args, tid):
                args = dict(args, id=nid)
                sock.sendto(lt.bencode({"t": tid, "y": "q", "q": q, "a": args}), node)
                while True:
                    data, frm = sock.recvfrom(65536)
                    msg = lt.bdecode(data)
                    if frm == node and msg and msg.get(b"t") == tid:
                        return msg
            try:
                r = query("get_peers", {"info_hash": ih}, b"g%d" % i)
                token = r.get(b"r", {}).get(b"token")
                if token is None:
                    log("krpc: no token from", node, r)
                    continue
                r = query("announce_peer", {"info_hash": ih, "port": port, "token": token, "implied_port": 0}, b"a%d" % i)
                if r.get(b"y") == b"r":
                    ok += 1
                else:
                    log("krpc: announce refused by", node, r)
            except socket.timeout:
                log("krpc: no answer from", node)
        return ok
    finally:
        sock.close()


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve(cfg):
    p = Peer(cfg)
    port = p.wait_listening(20)
    reply({"ready": True, "port": port})
    fd = sys.stdin.fileno()
    # libtorrent writes a byte to this pipe when alerts wait: they are
    # handled (and torrent_finished timed) as they come, without polling.
    alert_r, alert_w = os.pipe()
    os.set_blocking(alert_r, False)
    os.set_blocking(alert_w, False)
    p.ses.set_alert_fd(alert_w)
    buf = b""
    while True:
        r, _, _ = select.select([fd, alert_r], [], [], 0.5)
        if alert_r in r:
            try:
                os.read(alert_r, 4096)
            except BlockingIOError:
                pass
        if fd in r:
            chunk = os.read(fd, 65536)
            if not chunk:
                log("stdin closed, exiting")
                os._exit(0)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    p.pump()
                    reply(p.handle(line.decode("utf-8")))
        p.pump()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "peer"):
        sys.stderr.write("usage: ltpeer.py make|peer CONFIG_JSON\n")
        sys.exit(2)
    cfg = json.loads(sys.argv[2])
    if sys.argv[1] == "make":
        reply(make(cfg))
    else:
        serve(cfg)


if __name__ == "__main__":
    main()
