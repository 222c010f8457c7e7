"""The station as a service on the device: start-up to READY, resident memory at rest and
during a booking, bytes written and fsyncs per booking, and where the writes go.

    .venv/bin/python benchmarks/device_bench.py [--starts 3] [--bookings 3]
                                                [--sequence tenprint|flats] [--workdir DIR]
                                                [--keep-lossless]

Runs ``booking-station run`` as systemd would (credentials made by install/first_boot.py and
handed over as the unit's LoadCredential lines say, a notify socket this script holds), with
the emulated scanner drawing its prints in a child process (``process = true``: the station's
process holds what it would hold with a real scanner), a Mosquitto process on a free port and
the reference receiver (``booking-central run``) in its own process, so every booking is
committed, uploaded and acknowledged as on a station. The store's sealed bytes per delivered
booking are printed by kind; ``--keep-lossless`` turns ``store.keep_lossless_prints`` on (the
committed prints keep their PNGs until the purge, as every store did before that key).

Side by side in the same run, the reference: a bare Python process that loads only what the
station cannot start without (NFIQ 2 through NBIS, the minutiae model in onnxruntime, warmed
once). The ratios say what the station adds beyond those loads.

Bytes written are the kernel's per-process counters (/proc/PID/io ``write_bytes``: what reached
the block layer, so the workdir must not be a tmpfs; ``wchar``: what write() was asked to
write), summed over the station and its children. fsync and fdatasync calls, and every file
opened for writing, are counted by strace (Debian package ``strace``) attached to the station
for the bookings; the writes are reported by the folder they went to.
"""

from __future__ import annotations

import argparse
import collections
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from procmem import status_mb

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UNIT = REPO / "systemd" / "booking-station.service"
BENCH_OFFICER, BENCH_PIN = "bench", "135790"

FLOOR = """
import time, sys
t0 = time.monotonic()
from appliance.imaging.nfiq2 import load_backend
from appliance.minutiae.extractor import MinutiaeExtractor
load_backend().new_extractor(nfiq2=True)
MinutiaeExtractor().warm_up()
print(time.monotonic() - t0, flush=True)
sys.stdin.readline()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def credentials(work: Path) -> Path:
    """The installer's first-boot secrets, in $CREDENTIALS_DIRECTORY as the unit loads them."""
    import grp

    etc = work / "etc"
    subprocess.run([sys.executable, str(REPO / "install" / "first_boot.py"), "--etc", str(etc),
                    "--service-user", grp.getgrgid(os.getgid()).gr_name,
                    "--booking-station", str(BIN / "booking-station")],
                   check=True, capture_output=True)
    creds = work / "credentials"
    creds.mkdir(mode=0o700)
    for line in UNIT.read_text().splitlines():
        if line.startswith("LoadCredential="):
            name, _, source = line.removeprefix("LoadCredential=").partition(":")
            shutil.copy(etc / source.removeprefix("/etc/booking-station/"), creds / name)
    # the benchmark's own kiosk officer, in place of first boot's (whose PIN was printed)
    from argon2 import PasswordHasher

    (creds / "booking-station-officers").write_text(
        f"{BENCH_OFFICER}:{PasswordHasher().hash(BENCH_PIN)}\n")
    return creds


class Notify:
    """The notify socket: the time READY=1 arrived."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.ready_at: float | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096).decode()
            except OSError:
                return
            if "READY=1" in data.split("\n") and self.ready_at is None:
                self.ready_at = time.monotonic()

    def wait_ready(self, proc: subprocess.Popen, timeout: float = 300) -> float:
        deadline = time.monotonic() + timeout
        while self.ready_at is None:
            if proc.poll() is not None:
                raise SystemExit(f"the station exited with {proc.returncode} before READY")
            if time.monotonic() > deadline:
                raise SystemExit("no READY=1 within the deadline")
            time.sleep(0.01)
        return self.ready_at


#: The emulated ten-print livescan drawing its prints in a child process (what the bookings
#: need), and the R30x driver on its built-in pattern emulator: the real driver's open and
#: handshake with no print generator to start, the nearest to a real scanner's start-up.
SCANNERS = {
    "livescan": 'type = "emulated"\nseed = 21\nprocess = true\n',
    "r30x": 'type = "r30x"\nport = "r30xemu://?finger_source=pattern"\n',
}


def write_config(work: Path, broker_port: int, web_port: int, sequence: str,
                 scanner: str = "livescan", keep_lossless: bool = False) -> Path:
    profile = "local-tenprint" if sequence == "tenprint" else "local-flats"
    path = work / f"config-{scanner}.toml"
    path.write_text(f"""
[station]
station_id = "bench-1"
data_dir = "{work / 'state'}"
[scanner]
{SCANNERS[scanner]}[store]
min_free_mb = 64
keep_lossless_prints = {str(keep_lossless).lower()}
[mqtt]
port = {broker_port}
ack_timeout_s = 10.0
central_keys = ["{work / 'central-signing.pub'}"]
[web]
port = {web_port}
[capture]
sequence = "{sequence}"
[records]
profile = "{profile}"
[logging]
level = "WARNING"
""")
    return path


def start_station(work: Path, config: Path, creds: Path) -> tuple[subprocess.Popen, Notify, float]:
    sock = work / f"notify-{time.monotonic_ns()}"
    notify = Notify(sock)
    env = dict(os.environ, CREDENTIALS_DIRECTORY=str(creds), NOTIFY_SOCKET=str(sock),
               PYTHONDONTWRITEBYTECODE="1")  # as the unit sets it
    started = time.monotonic()
    proc = subprocess.Popen([str(BIN / "booking-station"), "run", "--config", str(config)],
                            env=env, cwd=work, stdout=subprocess.DEVNULL,
                            preexec_fn=lambda: os.umask(0o077))  # the unit's UMask=0077
    return proc, notify, started


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_sessions: dict[int, tuple[urllib.request.OpenerDirector, str]] = {}


def call(port: int, method: str, path: str, body: dict | None = None) -> dict:
    """The kiosk API as the signed-in officer (the session and its CSRF token kept per port)."""
    if port not in _sessions:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        _sessions[port] = (opener, "")
        signed_in = call(port, "POST", "/api/kiosk/signin",
                         {"officer": BENCH_OFFICER, "pin": BENCH_PIN})
        _sessions[port] = (opener, signed_in["csrf"])
    opener, csrf = _sessions[port]
    data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Origin": f"http://127.0.0.1:{port}",
                                          "X-CSRF-Token": csrf})
    with opener.open(req, timeout=300) as res:
        return json.loads(res.read())


def take_booking(port: int, number: str) -> None:
    """A whole booking through the kiosk's own API, as the officer's screen drives it."""
    call(port, "POST", "/api/booking", {"booking_number": number})
    while call(port, "GET", "/api/kiosk")["current"] is not None:
        call(port, "POST", "/api/capture")
        try:
            call(port, "POST", "/api/accept", {})
        except urllib.error.HTTPError:
            call(port, "POST", "/api/accept", {"override_reason": "benchmark"})
    try:
        call(port, "POST", "/api/submit", {})
    except urllib.error.HTTPError:  # the sequence check asks the officer to confirm
        call(port, "POST", "/api/submit", {"confirm_sequence": True})


def wait_all_stored(db: Path, count: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT state FROM outbox").fetchall()
        finally:
            conn.close()
        if len(rows) >= count and all(r[0] == "stored" for r in rows):
            return
        time.sleep(0.2)
    raise SystemExit("central did not acknowledge every booking in time")


def family(pid: int) -> list[int]:
    """The process and its descendants."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():  # a child belongs to the thread that forked it
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += family(int(child))
    return found


def io_counters(pids: list[int]) -> collections.Counter:
    total: collections.Counter = collections.Counter()
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                key, _, value = line.partition(":")
                total[key] += int(value)
        except OSError:
            pass
    return total


def transaction_bytes(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT SUM(size) FROM transactions").fetchone()[0])
    finally:
        conn.close()


def live_bytes(db: Path) -> int:
    """Bytes of the database's pages in use (its size less the free pages SQLite will reuse)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                             for p in ("page_count", "freelist_count", "page_size"))
        return (pages - free) * size
    finally:
        conn.close()


def held_bytes(db: Path) -> dict[str, int]:
    """Sealed bytes the store holds, by kind: what a delivered, not yet purged booking costs."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {kind: int(conn.execute(sql).fetchone()[0] or 0) for kind, sql in (
            ("lossless prints", "SELECT SUM(LENGTH(image_enc)) FROM impressions"),
            ("templates", "SELECT SUM(LENGTH(data_enc)) FROM templates"),
            ("transaction", "SELECT SUM(LENGTH(data_enc)) FROM transactions"),
        )}
    finally:
        conn.close()


WRITE_RE = re.compile(r"\b(?:write|pwrite64|writev|pwritev)\(\d+<([^>]+)>.*\) = (\d+)$")


def strace_summary(trace: Path, roots: dict[str, Path], by_file: collections.Counter
                   ) -> tuple[collections.Counter, collections.Counter]:
    """fsync-family calls, files opened for writing by folder; bytes written by file name
    are added to ``by_file``."""
    syncs: collections.Counter = collections.Counter()
    written: collections.Counter = collections.Counter()
    for line in trace.read_text(errors="replace").splitlines():
        wrote = WRITE_RE.search(line)
        if wrote:
            by_file[Path(wrote.group(1)).name] += int(wrote.group(2))
            continue
        for call_name in ("fdatasync(", "fsync("):
            if re.search(rf"\b{re.escape(call_name)}", line) and "= 0" in line:
                syncs[call_name.rstrip("(")] += 1
        if "openat(" in line and re.search(r"O_(WRONLY|RDWR|CREAT)", line) and "= -1" not in line:
            match = re.search(r'openat\([^"]*"([^"]+)"', line)
            if not match:
                continue
            path = Path(match.group(1))
            where = next((name for name, root in roots.items()
                          if path == root or root in path.parents), str(path.parent))
            written[where] += 1
    return syncs, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--bookings", type=int, default=3)
    parser.add_argument("--sequence", choices=["tenprint", "flats"], default="tenprint")
    parser.add_argument("--keep-lossless", action="store_true",
                        help="store.keep_lossless_prints on: committed prints keep their PNGs")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the store lives (default: a folder under /var/tmp)")
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    strace = shutil.which("strace")
    work = Path(tempfile.mkdtemp(prefix="device-bench-", dir=args.workdir or "/var/tmp"))
    children: list[subprocess.Popen] = []
    try:
        broker_port, web_port = free_port(), free_port()
        (work / "mosquitto.conf").write_text(
            f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        children.append(subprocess.Popen([mosquitto, "-c", str(work / "mosquitto.conf")],
                                         stderr=subprocess.DEVNULL))
        time.sleep(0.5)
        from central.commands import write_keypair

        write_keypair(work / "central-signing.key", work / "central-signing.pub")
        receiver = subprocess.Popen(
            [str(BIN / "booking-central"), "run", "--host", "127.0.0.1", "--port",
             str(broker_port), "--dir", str(work / "central"), "--key",
             str(work / "central-signing.key")], stdout=subprocess.PIPE, text=True)
        children.append(receiver)
        assert receiver.stdout is not None
        receiver.stdout.readline()
        creds = credentials(work)
        config = write_config(work, broker_port, web_port, args.sequence,
                              keep_lossless=args.keep_lossless)

        # -- start-up to READY, and the reference floor ---------------------------------
        station_s, floor_s, floor_rss, r30x_s = [], [], [], []
        r30x_config = write_config(work, broker_port, web_port, args.sequence, "r30x")
        for _ in range(args.starts):
            floor = subprocess.Popen([sys.executable, "-c", FLOOR], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO)
            started = time.monotonic()
            assert floor.stdout is not None and floor.stdin is not None
            floor.stdout.readline()
            floor_s.append(time.monotonic() - started)
            floor_rss.append(status_mb("VmRSS", floor.pid))
            floor.stdin.write("\n")
            floor.stdin.flush()
            floor.wait()
            proc, notify, started = start_station(work, config, creds)
            station_s.append(notify.wait_ready(proc) - started)
            stop(proc)
            proc, notify, started = start_station(work, r30x_config, creds)
            r30x_s.append(notify.wait_ready(proc) - started)
            stop(proc)
        print(f"start-up to READY (model loaded, warm): station with the emulated livescan "
              f"{statistics.median(station_s):.2f} s {[round(s, 2) for s in station_s]}; "
              f"reference (NFIQ 2 + model only) {statistics.median(floor_s):.2f} s; "
              f"ratio {statistics.median(station_s) / statistics.median(floor_s):.2f}; "
              f"with the R30x driver on its pattern emulator {statistics.median(r30x_s):.2f} s "
              f"{[round(s, 2) for s in r30x_s]}, ratio "
              f"{statistics.median(r30x_s) / statistics.median(floor_s):.2f}")

        # -- memory at rest and during bookings; bytes and fsyncs per booking ----------
        proc, notify, started = start_station(work, config, creds)
        notify.wait_ready(proc)
        children.append(proc)
        time.sleep(5)  # settle: the watchdog, telemetry and link are running
        rest = status_mb("VmRSS", proc.pid)
        scanner_child = [p for p in family(proc.pid) if p != proc.pid]
        print(f"resident memory at rest: station {rest:.0f} MB; reference "
              f"{statistics.median(floor_rss):.0f} MB; ratio "
              f"{rest / statistics.median(floor_rss):.2f} (the emulated scanner's child process "
              f"{sum(status_mb('VmRSS', p) for p in scanner_child):.0f} MB, not counted: "
              "a real scanner images in its own hardware)")
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
        tracer = None
        trace = work / "strace.txt"
        if strace:
            tracer = subprocess.Popen([strace, "-f", "-qq", "-y", "-e",
                                       "trace=openat,fsync,fdatasync,write,pwrite64,writev,pwritev",
                                       "-o", str(trace), "-p", str(proc.pid)],
                                      stderr=subprocess.DEVNULL)
            time.sleep(2)
        db = work / "state" / "station.db"
        before = io_counters(family(proc.pid))
        for n in range(args.bookings):
            take_booking(web_port, f"BK-{n:04d}")
        wait_all_stored(db, args.bookings)
        after = io_counters(family(proc.pid))
        peak = status_mb("VmHWM", proc.pid)
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        tx = transaction_bytes(db) / args.bookings
        written = (after["write_bytes"] - before["write_bytes"]) / args.bookings
        wchar = (after["wchar"] - before["wchar"]) / args.bookings
        stored = sum(p.stat().st_size for p in db.parent.glob("station.db*"))
        per_tx = transaction_bytes(db) / args.bookings
        live = live_bytes(db)
        print(f"store on disk after the bookings: {stored / 1e6:.2f} MB "
              f"({stored / args.bookings / 1e6:.2f} MB per booking, counting the empty store "
              f"and the WAL; the transaction {per_tx / 1e6:.2f} MB); pages in use "
              f"{live / 1e6:.2f} MB, the rest free pages the next drafts reuse")
        held = held_bytes(db)
        print(f"held in the store per delivered booking (sealed blobs; store.keep_lossless_prints"
              f" {'on' if args.keep_lossless else 'off'}): "
              f"{sum(held.values()) / args.bookings / 1e6:.2f} MB: " + ", ".join(
                  f"{kind} {n / args.bookings / 1e6:.2f} MB" for kind, n in held.items()))
        print(f"resident memory during {args.bookings} {args.sequence} bookings: peak "
              f"{peak:.0f} MB (at rest {rest:.0f} MB)")
        print(f"written per booking (committed, uploaded, acknowledged): {written / 1e6:.2f} MB "
              f"to the block layer, {wchar / 1e6:.2f} MB through write(); the transaction "
              f"{tx / 1e6:.2f} MB; ratio written / transaction {written / tx:.2f}")
        if tracer is not None:
            roots = {"state": work / "state", "cache": work / "cache", "logs": work / "logs",
                     "/dev/shm": Path("/dev/shm")}
            by_file: collections.Counter = collections.Counter()
            syncs, files = strace_summary(trace, roots, by_file)
            print(f"fsync per booking {syncs['fsync'] / args.bookings:.1f}, fdatasync per "
                  f"booking {syncs['fdatasync'] / args.bookings:.1f}")
            print("written per booking by file (write calls): " + ", ".join(
                f"{name} {count / args.bookings / 1e6:.2f} MB"
                for name, count in by_file.most_common(6) if count > 0))
            print("files opened for writing, by folder: " + ", ".join(
                f"{where} {count}" for where, count in files.most_common()))
        else:
            print("(strace is not installed: no fsync count)")
        stop(proc)
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(30)
                except subprocess.TimeoutExpired:
                    child.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
