#!/usr/bin/env python3
"""Helpers for scripts/bench-swarm.sh, each run inside a network namespace.

  bench-swarm.py recv PORT SECS          TCP receiver for the calibration: prints
                                         "BYTES FIRST LAST" (epoch seconds of the
                                         first and last byte), or nothing after SECS
  bench-swarm.py send HOST PORT BYTES    TCP sender for the calibration
  bench-swarm.py run AT CMD ARGS...      sleeps until the epoch time AT, starts CMD
                                         and copies its stdout, each line prefixed
                                         with the epoch time it arrived; SIGTERM is
                                         passed on to CMD
  bench-swarm.py lt seed|get AT TORRENT DIR
                                         a libtorrent peer: seeds TORRENT's data in
                                         DIR, or (from AT on) downloads it into DIR
                                         and keeps seeding; prints "EPOCH seeding" /
                                         "EPOCH done" lines; stops on SIGTERM

Only the standard library, plus python3-libtorrent for `lt`.
"""
import os
import signal
import socket
import subprocess
import sys
import time


def sleep_until(at):
    delay = at - time.time()
    if delay > 0:
        time.sleep(delay)


def say(line):
    sys.stdout.write("%.6f %s\n" % (time.time(), line))
    sys.stdout.flush()


def recv(port, secs):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(1)
    srv.settimeout(secs)
    conn, _ = srv.accept()
    conn.settimeout(secs)
    total = 0
    first = last = None
    buf = bytearray(1 << 16)
    while True:
        n = conn.recv_into(buf)
        if n == 0:
            break
        now = time.time()
        if first is None:
            first = now
        last = now
        total += n
    print("%d %.6f %.6f" % (total, first or 0.0, last or 0.0), flush=True)


def send(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=30)
    chunk = os.urandom(1 << 16)
    left = nbytes
    while left > 0:
        n = s.send(chunk[: min(left, len(chunk))])
        left -= n
    s.shutdown(socket.SHUT_WR)
    # Wait for the receiver to close: every byte has arrived.
    while s.recv(4096):
        pass
    s.close()


def run(at, cmd):
    sleep_until(at)
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    say("started")
    for raw in child.stdout:
        say(raw.decode("utf-8", "replace").rstrip("\n"))
    sys.exit(child.wait())


def lt_peer(role, at, torrent, directory):
    import libtorrent as lt

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    settings = {
        "listen_interfaces": "0.0.0.0:6881",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "stop_tracker_timeout": 1,
        "alert_mask": lt.alert.category_t.status_notification
        | lt.alert.category_t.error_notification,
    }
    ti = lt.torrent_info(torrent)
    if role == "get":
        sleep_until(at)
    ses = lt.session(settings)
    h = ses.add_torrent({"ti": ti, "save_path": directory})
    say("started")
    reported = False
    while not stop:
        st = h.status()
        if not reported and st.is_seeding:
            say("seeding" if role == "seed" else "done")
            reported = True
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                say("error " + a.message())
        ses.wait_for_alert(20)
    # Tell the tracker we leave, then go at once: the session's destructor
    # may wait up to stop_tracker_timeout for the tracker's answers.
    ses.pause()
    time.sleep(0.3)
    sys.stdout.flush()
    os._exit(0)


def main(argv):
    if len(argv) >= 3 and argv[0] == "recv":
        recv(int(argv[1]), float(argv[2]))
    elif len(argv) == 4 and argv[0] == "send":
        send(argv[1], int(argv[2]), int(argv[3]))
    elif len(argv) >= 3 and argv[0] == "run":
        run(float(argv[1]), argv[2:])
    elif len(argv) == 5 and argv[0] == "lt" and argv[1] in ("seed", "get"):
        lt_peer(argv[1], float(argv[2]), argv[3], argv[4])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
