r"""``booking-central``: run the reference receiver, watch the fleet, send a command, make a key.

    booking-central run --host broker --port 8883 --dir /var/lib/central \\
        --tls-ca ca.pem --tls-cert central.crt --tls-key central.key --key central-signing.key \\
        --metrics-port 9465
    booking-central metrics --host broker --port 8883 --listen-port 9464 \\
        --tls-ca ca.pem --tls-cert monitoring.crt --tls-key monitoring.key
    booking-central command st-1 ping --host broker --port 8883 --key central-signing.key ...
    booking-central keygen --out central-signing.key --public central-signing.pub

Every ack ``run`` sends and every command ``command`` sends is signed with ``--key``; stations
refuse unsigned ones unless configured for a test bench, so leaving it out needs ``--unsigned``.

``run`` is the default subcommand. It stops cleanly on SIGTERM or SIGINT and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry, start_http_server

from appliance.errors import SyncError
from appliance.sync.config import TlsSection
from appliance.sync.protocol import TXID_RE
from appliance.sync.tls import client_context
from central.commands import CommandClient, CommandTimeout, load_private_key, write_keypair
from central.fleet import FleetWatch
from central.fleet_web import create_fleet_app
from central.metrics import FleetCollector, ReceiverMetrics
from central.passing import FolderCourier, export_lines
from central.receiver import CentralReceiver, Destination, ReceiverStore

if TYPE_CHECKING:  # psycopg is the optional `postgres` extra
    from central.shared import SharedStore

log = logging.getLogger("central")
SUBCOMMANDS = ("run", "metrics", "export", "query", "command", "keygen")


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="Broker host (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=1883, help="Broker port (8883 for TLS).")
    parser.add_argument("--prefix", default="bst", help="Topic prefix (default bst).")
    parser.add_argument("--tls-ca", type=Path, help="CA that signed the broker's certificate.")
    parser.add_argument("--tls-cert", type=Path, help="Central's client certificate (CN central).")
    parser.add_argument("--tls-key", type=Path, help="Central's client key.")
    parser.add_argument("--username", help="MQTT user name (when the broker uses passwords).")
    parser.add_argument("--password-file", type=Path, help="File holding the MQTT password.")


def _signing_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--key", type=Path, help=f"Central's Ed25519 signing key (PEM): signs "
                        f"{what}.")
    parser.add_argument("--unsigned", action="store_true",
                        help=f"Send {what} unsigned (only test benches with "
                        "allow_unsigned_acks / allow_unsigned_commands accept that).")


def _signing_key(args: argparse.Namespace) -> Ed25519PrivateKey | None:
    if args.key is None:
        if not args.unsigned:
            raise SystemExit("booking-central: --key central's signing key is needed "
                             "(or --unsigned for a test bench)")
        return None
    try:
        return load_private_key(args.key)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"booking-central: cannot use {args.key}: {exc}") from exc


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="booking-central", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="subcommand")
    run = sub.add_parser("run", help="Run the reference receiver until SIGTERM.")
    _connection_options(run)
    run.add_argument("--dir", type=Path,
                     help="Where transactions are stored (one receiver, SQLite index).")
    run.add_argument(
        "--postgres", metavar="DSN",
        help="Share the load with other receivers: MQTT 5 shared subscription, index and "
             "partial uploads in this PostgreSQL database (instead of --dir).")
    run.add_argument("--share-group", default="central",
                     help="Shared subscription group of the receivers (default central).")
    run.add_argument("--client-id", default="central-receiver", help="MQTT client id.")
    run.add_argument(
        "--destination", action="append", default=[], metavar="NAME|PURPOSE[|optional]",
        help="Where central passes bookings on, listed in every receipt (repeatable).")
    _signing_options(run, "every ack")
    run.add_argument(
        "--pass-on", action="append", default=[], metavar="NAME=FOLDER",
        help="Pass each stored transaction on to destination NAME by writing it into FOLDER; "
             "central records every hand-off (repeatable).")
    run.add_argument(
        "--pass-on-retry", type=float, default=30.0, metavar="SECONDS",
        help="With --postgres: how often a receiver looks for transactions a destination "
             "refused or a dead receiver left (default 30).")
    run.add_argument("--metrics-port", type=int,
                     help="Serve the receiver's own Prometheus metrics on this port.")
    run.add_argument("--metrics-host", default="127.0.0.1",
                     help="Address the receiver's metrics listen on (default 127.0.0.1).")
    run.add_argument("-v", "--verbose", action="store_true", help="Log every answer.")
    metrics = sub.add_parser(
        "metrics", help="Watch every station's telemetry; serve Prometheus metrics and the "
                        "fleet page until SIGTERM.")
    _connection_options(metrics)
    metrics.add_argument("--client-id", default="central-fleet", help="MQTT client id.")
    metrics.add_argument("--listen-host", default="127.0.0.1",
                         help="Address the HTTP side listens on (default 127.0.0.1).")
    metrics.add_argument("--listen-port", type=int, default=9464,
                         help="Port of /metrics and the fleet page (default 9464).")
    metrics.add_argument("--allowed-host", action="append", default=[],
                         help="Host name the page answers to besides localhost (repeatable).")
    metrics.add_argument("--stale-after", type=float, default=120.0,
                         help="Seconds without telemetry before a station shows red.")
    export = sub.add_parser("export", help="Write what central holds (metadata only).")
    _index_options(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                        help="JSON lines (default) or CSV.")
    export.add_argument("--out", type=Path, help="Output file (default: standard output).")
    query = sub.add_parser("query", help="Where one transaction was passed on (for an auditor).")
    _index_options(query)
    query.add_argument("transaction_id", help="The transaction id (32 hex digits).")
    cmd = sub.add_parser("command", help="Send one command to a station and print its answer.")
    _connection_options(cmd)
    cmd.add_argument("station", help="Station id.")
    cmd.add_argument("name", help="ping, diagnostics, sync_now, pause, resume or throttle.")
    cmd.add_argument("--rate", type=float, help="rate_per_s for throttle.")
    _signing_options(cmd, "the command")
    cmd.add_argument("--timeout", type=float, default=10.0, help="Seconds to wait for the answer.")
    keygen = sub.add_parser("keygen", help="Make central's Ed25519 command-signing key pair.")
    keygen.add_argument("--out", type=Path, required=True, help="Private key file (mode 600).")
    keygen.add_argument("--public", type=Path, required=True,
                        help="Public key file, to install on stations (central_public_key).")
    return parser


def _index_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dir", type=Path, help="The receiver's folder (one receiver).")
    where.add_argument("--postgres", metavar="DSN",
                       help="The shared receivers' PostgreSQL database.")


def _held_index(args: argparse.Namespace) -> ReceiverStore | SharedStore | None:
    """The index `export` and `query` read, or None after saying why there is none.

    One receiver's SQLite file (``--dir``) or the shared receivers' database (``--postgres``).
    """
    if args.postgres:
        try:
            from central.shared import SharedStore
        except ImportError:
            print("booking-central: --postgres needs psycopg: pip install "
                  "'booking-station[postgres]'", file=sys.stderr)
            return None
        try:
            return SharedStore(args.postgres)
        except Exception as exc:  # psycopg's errors: refused, unknown database, bad DSN
            print(f"booking-central: cannot open {args.postgres}: {exc}", file=sys.stderr)
            return None
    if not (args.dir / "received.db").is_file():
        print(f"booking-central: no receiver index in {args.dir}", file=sys.stderr)
        return None
    return ReceiverStore(args.dir)


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    given = [args.tls_ca, args.tls_cert, args.tls_key]
    if not any(given):
        return None
    if not all(given):
        raise SystemExit("booking-central: --tls-ca, --tls-cert and --tls-key go together")
    try:
        return client_context(TlsSection(ca_file=args.tls_ca, cert_file=args.tls_cert,
                                         key_file=args.tls_key))
    except SyncError as exc:
        raise SystemExit(f"booking-central: {exc}") from exc


def _password(args: argparse.Namespace) -> str | None:
    return args.password_file.read_text().strip() if args.password_file else None


def _destinations(specs: list[str]) -> list[Destination]:
    out = []
    for spec in specs:
        parts = spec.split("|")
        if len(parts) not in (2, 3) or not all(parts[:2]):
            raise SystemExit(f"booking-central: --destination {spec!r}: use NAME|PURPOSE")
        mandatory = not (len(parts) == 3 and parts[2].strip().lower() == "optional")
        out.append(Destination(parts[0].strip(), parts[1].strip(), mandatory))
    return out


def _couriers(specs: list[str], destinations: list[Destination]) -> dict[str, FolderCourier]:
    names = {d.name for d in destinations}
    out = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not folder or name.strip() not in names:
            raise SystemExit(f"booking-central: --pass-on {spec!r}: use NAME=FOLDER with a NAME "
                             "given as --destination")
        out[name.strip()] = FolderCourier(Path(folder))
    return out


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    metrics = ReceiverMetrics() if args.metrics_port else None
    destinations = _destinations(args.destination)
    if (args.dir is None) == (args.postgres is None):
        raise SystemExit("booking-central run: give --dir (one receiver) or --postgres (shared)")
    if args.postgres:
        try:  # psycopg is the optional `postgres` extra: one receiver never needs it
            from central.shared import SharedReceiver
        except ImportError as exc:
            raise SystemExit("booking-central run --postgres needs psycopg: pip install "
                             "'booking-station[postgres]'") from exc
        return _serve(SharedReceiver(
            args.postgres, host=args.host, port=args.port, prefix=args.prefix,
            group=args.share_group, client_id=args.client_id, tls=_tls(args),
            username=args.username, password=_password(args), destinations=destinations,
            metrics=metrics, signing_key=_signing_key(args),
            couriers=_couriers(args.pass_on, destinations),
            pass_on_retry_s=args.pass_on_retry),
            args, metrics, f"PostgreSQL (group {args.share_group})")
    receiver = CentralReceiver(
        args.dir, host=args.host, port=args.port, prefix=args.prefix, client_id=args.client_id,
        tls=_tls(args), username=args.username, password=_password(args),
        destinations=destinations, signing_key=_signing_key(args), metrics=metrics,
        couriers=_couriers(args.pass_on, destinations),
    )
    return _serve(receiver, args, metrics, str(args.dir))


class _Held(Protocol):
    def count(self) -> int: ...


class _Receiver(Protocol):
    """What `run` needs of a receiver, single (SQLite) or shared (PostgreSQL)."""

    @property
    def store(self) -> _Held: ...

    def start(self, timeout: float = 10.0) -> None: ...

    def stop(self) -> None: ...


def _serve(receiver: _Receiver, args: argparse.Namespace,
           metrics: ReceiverMetrics | None, where: str) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    try:
        receiver.start()
    except ConnectionError as exc:
        print(f"booking-central: {exc}", file=sys.stderr)
        return 2
    server = None
    if metrics is not None:
        server, _thread = start_http_server(args.metrics_port, args.metrics_host,
                                            registry=metrics.registry)
    print(f"central receiver: listening on {args.host}:{args.port} for {args.prefix}/+/tx/#, "
          f"storing in {where}", flush=True)
    stop.wait()
    if server is not None:
        server.shutdown()
    held = receiver.store.count()
    receiver.stop()
    print(f"central receiver: stopped; {held} transactions held", flush=True)
    return 0


def watch_fleet(args: argparse.Namespace) -> int:
    """Watch the telemetry tree and serve /metrics and the fleet page until SIGTERM/SIGINT."""
    watch = FleetWatch(host=args.host, port=args.port, prefix=args.prefix,
                       client_id=args.client_id, tls=_tls(args), username=args.username,
                       password=_password(args))
    registry = CollectorRegistry()
    registry.register(FleetCollector(watch))
    hosts = sorted({"localhost", "127.0.0.1", args.listen_host, *args.allowed_host})
    app = create_fleet_app(watch, registry, allowed_hosts=hosts, stale_after_s=args.stale_after)
    try:
        watch.start()
    except ConnectionError as exc:
        print(f"booking-central: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(uvicorn.Config(app, host=args.listen_host, port=args.listen_port,
                                           log_level="warning", access_log=False))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_a: stop.set())
    # off the main thread uvicorn leaves the signals to us, so SIGTERM ends in exit status 0
    serving = threading.Thread(target=server.run, name="fleet-http", daemon=True)
    serving.start()
    while not server.started and serving.is_alive():
        time.sleep(0.05)
    if not server.started:
        watch.stop()
        print(f"booking-central: cannot serve on {args.listen_host}:{args.listen_port}",
              file=sys.stderr)
        return 2
    print(f"central fleet: watching {args.host}:{args.port} {args.prefix}-telemetry/#, serving "
          f"http://{args.listen_host}:{args.listen_port}/metrics and the fleet page", flush=True)
    stop.wait()
    server.should_exit = True
    serving.join(30)
    watch.stop()
    print(f"central fleet: stopped; {watch.messages} telemetry messages absorbed", flush=True)
    return 0


def export(args: argparse.Namespace) -> int:
    """Write every transaction held, metadata only."""
    store = _held_index(args)
    if store is None:
        return 2
    try:
        out = open(args.out, "w", newline="") if args.out else sys.stdout
        try:
            for line in export_lines(store.export(), args.format):
                out.write(line)
        finally:
            if args.out:
                out.close()
    finally:
        store.close()
    if args.out:
        print(f"wrote {args.out} ({args.format})", file=sys.stderr)
    return 0


def query(args: argparse.Namespace) -> int:
    """Print where one transaction was passed on, as JSON; exit 1 when central never held it."""
    if not TXID_RE.match(args.transaction_id):
        print("booking-central: a transaction id is 32 lowercase hex digits", file=sys.stderr)
        return 2
    store = _held_index(args)
    if store is None:
        return 2
    try:
        held = store.held(args.transaction_id)
    finally:
        store.close()
    if held is None:
        print(f"booking-central: central does not hold {args.transaction_id}", file=sys.stderr)
        return 1
    print(json.dumps(held, indent=2, sort_keys=True))
    return 0


def command(args: argparse.Namespace) -> int:
    """Send one command; print the answer as JSON; exit 0 when the station ran it."""
    key = _signing_key(args)
    cmd_args = {"rate_per_s": args.rate} if args.rate is not None else None
    with CommandClient(args.host, args.port, prefix=args.prefix, key=key, tls=_tls(args),
                       username=args.username, password=_password(args)) as client:
        try:
            answer = client.request(args.station, args.name, cmd_args, timeout=args.timeout)
        except CommandTimeout as exc:
            print(f"booking-central: {exc}", file=sys.stderr)
            return 3
    print(json.dumps(answer, indent=2, sort_keys=True))
    return 0 if answer.get("ok") else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``booking-central`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.subcommand == "run":
        return run(args)
    if args.subcommand == "export":
        return export(args)
    if args.subcommand == "query":
        return query(args)
    if args.subcommand == "metrics":
        return watch_fleet(args)
    if args.subcommand == "command":
        return command(args)
    kid = write_keypair(args.out, args.public)
    print(f"wrote {args.out} (keep it secret) and {args.public} (install on stations, listed "
          f"in mqtt.central_keys); key id {kid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
