"""``booking-station``: run the station and the technician's tools.

Exit codes: 0 success, 1 a check found problems, 2 bad usage or a bad config file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from appliance.config import (
    DEFAULT_CONFIG_PATH,
    StationConfig,
    load_config,
    read_config_data,
    validate_config_data,
)
from appliance.errors import ConfigError, StationError
from appliance.system.console import exit_code
from drivers.base import CaptureMode


def _cmd_run(args: argparse.Namespace) -> int:
    from appliance.app import Station
    from appliance.system.logs import setup_logging

    config = _checked_config(args.config)
    setup_logging(config.logging)
    asyncio.run(Station(config, config_path=args.config).run_until_stopped())
    return 0


def _checked_config(path: Path, *, machine: bool = True) -> StationConfig:
    """The config at ``path`` once the file and this machine pass every check.

    ConfigError lists every problem; warnings go to stderr. ``check-config`` and ``run`` both
    come through here, so a file that passes the one does not crash the other. Without
    ``machine`` only the file is checked (a config prepared for another machine).
    """
    from appliance.preflight import preflight

    config, problems = validate_config_data(read_config_data(path))
    found = preflight(config) if config is not None and machine else None
    if found is not None:
        problems += found.errors
        for warning in found.warnings:
            print(f"{path}: warning: {warning.path}: {warning.message}", file=sys.stderr)
    if problems or config is None:
        raise ConfigError("\n".join(f"{path}: {p.path}: {p.message}" for p in problems))
    return config


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = _checked_config(args.path, machine=not args.file_only)
    what = "the file alone" if args.file_only else "file and machine"
    print(f"{args.path}: OK, {what} (config hash {config.digest()})")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from appliance.cli.records import validate_command

    return validate_command(args.file, args.profile)


def _cmd_extract(args: argparse.Namespace) -> int:
    from appliance.cli.minutiae import extract_command

    return extract_command(args.image, args.ppi,
                           max_pixels=int(args.max_megapixels * 1_000_000))


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    from appliance.store.audit import verify
    from appliance.store.database import connect_readonly

    path = args.database or load_config(args.config).database_path
    conn = connect_readonly(path)
    try:
        report = verify(conn)
    finally:
        conn.close()
    if report.ok:
        print(f"audit chain OK: {report.entries} entries, head {report.head}")
        return 0
    print(f"audit chain BROKEN at entry {report.first_bad_seq}: {report.problem}")
    return 1


def _cmd_scanner(args: argparse.Namespace) -> int:
    from appliance.cli.scanner import scanner_command
    config = load_config(args.config) if args.config else StationConfig()
    return scanner_command(config, args.action, out=args.out, mode=args.mode,
                           seconds=args.seconds)


def _cmd_store(args: argparse.Namespace) -> int:
    from appliance.cli import store as store_cli

    if args.store_command == "rotate-key":
        return store_cli.rotate_key_command(args.config, args.new_key_file, sys.stdout,
                                            batch_rows=args.batch_rows)
    if args.store_command == "restore-backup":
        return store_cli.restore_backup_command(args.config, args.backup, sys.stdout,
                                                list_only=args.list)
    if args.store_command == "new":
        return store_cli.new_store_command(args.config, sys.stdout, force=args.force)
    return store_cli.backup_command(args.config, sys.stdout, keep=args.keep)


def _cmd_hash_password(args: argparse.Namespace) -> int:
    from appliance.web.auth import hash_password

    password = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline()
    print(f"{args.user}:{hash_password(password.rstrip(chr(10)))}")
    return 0


def _cmd_tls(args: argparse.Namespace) -> int:
    from appliance.web.tls import fingerprint, generate, key_path

    config = load_config(args.config)
    tls = config.web.technician_tls
    if tls is None:
        raise ConfigError(f"{args.config}: web.technician_tls is not set: the technician page "
                          "is served on loopback only")
    if args.generate and not tls.certificate.exists():
        names = tls.names or config.web.server_names
        generate(tls.certificate, key_path(tls), names)
        print(f"{tls.certificate}: new self-signed certificate for {', '.join(names)}")
    print(f"{tls.certificate}: {fingerprint(tls.certificate)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command line, documented in the README."""
    parser = argparse.ArgumentParser(prog="booking-station", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the station from its config file (systemd's ExecStart)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("check-config", help="validate a config file and this machine against "
                       "it (folders, secrets, files, host names); every error with its key")
    p.add_argument("path", type=Path)
    p.add_argument("--file-only", action="store_true",
                   help="check the file alone, not this machine (a config for another station)")
    p.set_defaults(func=_cmd_check_config)

    p = sub.add_parser("validate", help="check an ANSI/NIST-ITL transaction against its profile")
    p.add_argument("file", type=Path)
    p.add_argument("--profile", default=None)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("extract", help="minutiae of a fingerprint image as JSON (ONNX model)")
    p.add_argument("image", type=Path)
    p.add_argument("--ppi", type=int, default=None, help="resolution of the image (default 500)")
    p.add_argument("--max-megapixels", type=float, default=10.0,
                   help="refuse larger images, before decoding them (default 10)")
    p.set_defaults(func=_cmd_extract)

    p = sub.add_parser("audit", help="audit log tools")
    audit_sub = p.add_subparsers(dest="audit_command", required=True)
    v = audit_sub.add_parser("verify", help="walk the hash chain; name the first bad entry")
    v.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    v.add_argument("--database", type=Path, default=None)
    v.set_defaults(func=_cmd_audit_verify)

    p = sub.add_parser("store", help="technician tools for the encrypted store (docs/store.md)")
    store_sub = p.add_subparsers(dest="store_command", required=True)
    s = store_sub.add_parser("rotate-key", help="re-encrypt every blob under a new key; "
                             "safe to interrupt and run again (station stopped)")
    s.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    s.add_argument("--new-key-file", type=Path, default=None,
                   help="the new key (root-only file); without it the configured key is the "
                        "new one and the '.previous' credential or file the old one")
    s.add_argument("--batch-rows", type=int, default=64, help="rows per transaction")
    s.set_defaults(func=_cmd_store)
    s = store_sub.add_parser("restore-backup", help="put the newest sound backup (or BACKUP) "
                             "in place of the store (station stopped)")
    s.add_argument("backup", type=Path, nargs="?", default=None)
    s.add_argument("--list", action="store_true", help="list the backups and exit")
    s.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    s.set_defaults(func=_cmd_store)
    s = store_sub.add_parser("new", help="start an empty store; the old file is kept "
                             "(station stopped)")
    s.add_argument("--force", action="store_true",
                   help="even when the current store is sound and holds undelivered bookings")
    s.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    s.set_defaults(func=_cmd_store)
    s = store_sub.add_parser("backup", help="take a backup of the store now")
    s.add_argument("--keep", type=int, default=7, help="backups to keep")
    s.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    s.set_defaults(func=_cmd_store)

    p = sub.add_parser("scanner", help="scanner tools: list, info, capture, fps")
    p.add_argument("action", choices=["list", "info", "capture", "fps"])
    p.add_argument("--config", type=Path, default=None,
                   help="config whose [scanner] to use (default: the emulated livescan)")
    p.add_argument("--out", type=Path, default=None, help="PNG file for capture")
    p.add_argument("--mode", default=None, choices=[m.value for m in CaptureMode])
    p.add_argument("--seconds", type=float, default=3.0, help="measuring time for fps")
    p.set_defaults(func=_cmd_scanner)

    p = sub.add_parser("tls", help="print the technician page's certificate fingerprint (SHA-256) "
                       "to check against the browser's")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG_PATH)
    p.add_argument("--generate", action="store_true",
                   help="make a self-signed certificate first when there is none (installer)")
    p.set_defaults(func=_cmd_tls)

    p = sub.add_parser("hash-password", help="print a technician login line for the credential")
    p.add_argument("user")
    p.set_defaults(func=_cmd_hash_password)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    return exit_code(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except StationError as exc:
        print(f"booking-station: {exc}", file=sys.stderr)
        return 1
