#!/usr/bin/env python3
"""libtorrent peers for benches/swarm.sh: one process per peer, all on 127.0.0.1.

Usage:
  libtorrent_swarm.py make  FILE TORRENT PIECE_BYTES
  libtorrent_swarm.py seed  TORRENT DIR PORT [tcp|utp]
  libtorrent_swarm.py leech TORRENT DIR PORT [tcp|utp] PEER_PORT...

make   writes a v1 .torrent of FILE without trackers.
seed   serves DIR/<name> on 127.0.0.1:PORT, prints "seeding" once it has checked the file
       and listens, then runs until killed.
leech  downloads into DIR/<name>, connecting to 127.0.0.1:PEER_PORT for every PEER_PORT
       (the seeder and the other leechers); prints "complete SECONDS" (from adding the
       torrent to having every piece verified) and exits 0; exits 1 after TIMEOUT seconds
       (environment, default 300).
The transport (default tcp) is the only one enabled, both ways.
"""
import os
import sys
import time

import libtorrent as lt


def make(path, torrent, piece_bytes):
    fs = lt.file_storage()
    lt.add_files(fs, path)
    # v1 only: a hybrid torrent has every piece hashed with SHA-1 and SHA-256, which would
    # charge libtorrent's leechers twice the hashing ppspp's SHA-1 leechers do.
    ct = lt.create_torrent(fs, piece_bytes, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(path)))
    with open(torrent, "wb") as f:
        f.write(lt.bencode(ct.generate()))


def session(port, transport):
    # libtorrent's own preset for fast peers (deep request queues, large socket buffers,
    # no unchoke limit), then what a swarm confined to one address needs.
    s = lt.high_performance_seed()
    utp = transport == "utp"
    s.update({
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_outgoing_utp": utp,
        "enable_incoming_utp": utp,
        "enable_outgoing_tcp": not utp,
        "enable_incoming_tcp": not utp,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "upload_rate_limit": 0,
        "download_rate_limit": 0,
        # Every peer is 127.0.0.1: by default libtorrent keeps one connection per IP.
        "allow_multiple_connections_per_ip": True,
        # The leechers start together, so some connect before others listen; the preset
        # gives up on a peer after one failure and the default waits 60 s to retry.
        "max_failcount": 100,
        "min_reconnect_time": 1,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification,
    })
    return lt.session(s)


def add(ses, torrent, save_dir):
    return ses.add_torrent({"ti": lt.torrent_info(torrent), "save_path": save_dir})


def seed(torrent, save_dir, port, transport):
    ses = session(port, transport)
    h = add(ses, torrent, save_dir)
    while not (h.status().is_seeding and ses.is_listening()):
        time.sleep(0.01)
    print("seeding", flush=True)
    while True:
        for a in ses.pop_alerts():
            if a.category() & lt.alert.category_t.error_notification:
                print(a.message(), file=sys.stderr, flush=True)
        time.sleep(1)


def leech(torrent, save_dir, port, transport, peer_ports, timeout):
    ses = session(port, transport)
    t0 = time.monotonic()
    h = add(ses, torrent, save_dir)
    last_connect = -1.0
    while True:
        now = time.monotonic() - t0
        if h.status().is_seeding:
            print("complete %.3f" % now, flush=True)
            return 0
        if now > timeout:
            print("timed out, %.1f%% done" % (100 * h.status().progress), file=sys.stderr)
            return 1
        # Re-offered every second: libtorrent ignores peers it is already connected to, and
        # this reaches the leechers that were not yet listening on the first try.
        if now - last_connect >= 1:
            for p in peer_ports:
                h.connect_peer(("127.0.0.1", p))
            last_connect = now
        ses.wait_for_alert(10)
        for a in ses.pop_alerts():
            if a.category() & lt.alert.category_t.error_notification:
                print(a.message(), file=sys.stderr, flush=True)


def main(argv):
    if len(argv) >= 4 and argv[0] == "make":
        make(argv[1], argv[2], int(argv[3]))
        return 0
    if len(argv) >= 4 and argv[0] in ("seed", "leech"):
        torrent, save_dir, port = argv[1], argv[2], int(argv[3])
        rest = argv[4:]
        transport = "tcp"
        if rest and rest[0] in ("tcp", "utp"):
            transport = rest.pop(0)
        if argv[0] == "seed":
            seed(torrent, save_dir, port, transport)
            return 0
        timeout = float(os.environ.get("TIMEOUT", "300"))
        return leech(torrent, save_dir, port, transport, [int(p) for p in rest], timeout)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
