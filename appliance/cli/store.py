"""The technician's store commands: ``booking-station store rotate-key|restore-backup|new|backup``.

Plain functions that take the config path and a text stream and return the exit code, so
``appliance/cli.py`` only wires arguments to them and tests call them directly. Exit codes follow
the main CLI: 0 done, 1 the store refused or failed, 2 bad config or key material. Nothing here
prints a booking number, a subject field or any blob: counts, key ids and file names only.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import TextIO

from appliance.config import load_config
from appliance.errors import ConfigError, StationError
from appliance.store import backup
from appliance.store.database import connect_readonly
from appliance.store.keys import load_cipher, previous_credential_name, read_key_file
from appliance.store.rotation import RotationProgress, key_usage
from appliance.store.store import Store

#: Print a progress line every this many batches.
PROGRESS_EVERY = 10


def rotate_key_command(
    config_path: Path, new_key_file: Path | None, out: TextIO, *, batch_rows: int = 64
) -> int:
    """Re-encrypt every blob under the new key; safe to interrupt and run again.

    Without ``new_key_file`` the configured key (credential or key file) is the new key and the
    ``.previous`` credential or file holds the old one. With it, the configured key is the old
    one and ``new_key_file`` the new; install it as the key afterwards.
    """
    try:
        config = load_config(config_path)
        new_key = read_key_file(new_key_file) if new_key_file is not None else None
        cipher = load_cipher(config.store, new_key=new_key)
    except ConfigError as exc:
        print(f"booking-station: {exc}", file=out)
        return 2
    store = Store(config.database_path, cipher)
    try:
        store.open()
        try:
            usage = store.key_usage()
            if len(cipher.key_ids) == 1 and set(usage) <= cipher.key_ids \
                    and store.rotation_progress() is None:
                print(f"nothing to rotate: every row is already under key {cipher.current_id}. "
                      f"To rotate, install the new key as {config.store.key_credential!r} and "
                      f"the old one as {previous_credential_name(config.store)!r} (or the "
                      "'.previous' key file), or pass --new-key-file", file=out)
                return 0
            print(f"rotating to key {cipher.current_id}; rows per key now: "
                  f"{_usage_text(usage)}", file=out)

            def progress(p: RotationProgress) -> None:
                if p.batches % PROGRESS_EVERY == 0:
                    print(f"  {p.rows_done} rows re-encrypted ({p.batches} batches)", file=out)

            report = asyncio.run(store.rotate_key(batch_rows=batch_rows, on_batch=progress))
            if not report.completed:
                print("rotation incomplete: rows under an old key remain; run it again",
                      file=out)
                return 1
            fresh = asyncio.run(store.backup_now())
        finally:
            store.close()
    except StationError as exc:
        print(f"booking-station: {exc}", file=out)
        return 1
    old = set(report.from_key_ids)
    print(f"done: {report.rows_rotated} rows re-encrypted in this run, "
          f"{report.rows_total} in all; every row is now under key {report.to_key_id}",
          file=out)
    print(f"fresh backup: {fresh}", file=out)
    if old:
        print(f"no row of the store names the old key(s) {', '.join(sorted(old))} any more.",
              file=out)
        older = [p for p in backup.list_backups(config.database_path)
                 if old & set(_backup_key_ids(p))]
        if older:
            print(f"{len(older)} older backup(s) still need the old key: keep it offline until "
                  "they have rotated out, or delete them:", file=out)
            for path in older:
                print(f"  {path}", file=out)
    if new_key_file is not None:
        print(f"next: install {new_key_file} as the store key (credential "
              f"{config.store.key_credential!r} or store.key_file) before starting the station",
              file=out)
    else:
        print(f"next: remove the {previous_credential_name(config.store)!r} credential "
              "(or the '.previous' key file) once no backup you keep needs it", file=out)
    return 0


def restore_backup_command(
    config_path: Path, backup_path: Path | None, out: TextIO, *, list_only: bool = False
) -> int:
    """Put a backup (the newest sound one by default) in place of the store.

    The station must be stopped. The replaced database is kept as ``<db>.replaced-<time>``.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"booking-station: {exc}", file=out)
        return 2
    db_path = config.database_path
    if list_only:
        found = backup.list_backups(db_path)
        if not found:
            print(f"no backups in {backup.backups_dir(db_path)}", file=out)
        for path in found:
            print(f"{path}  taken {backup.backup_time(db_path, path):%Y-%m-%d %H:%M:%S} UTC",
                  file=out)
        return 0
    try:
        report = backup.restore_backup(db_path, backup_path)
    except StationError as exc:
        print(f"booking-station: {exc}", file=out)
        return 1
    taken = f"{report.taken_at:%Y-%m-%d %H:%M:%S} UTC" if report.taken_at else "unknown time"
    print(f"restored {report.backup} (taken {taken}): {report.bookings} bookings, "
          f"{report.undelivered} not yet delivered", file=out)
    if report.set_aside is not None:
        print(f"the replaced database is kept as {report.set_aside}", file=out)
    print("bookings made after the backup was taken are not in the restored store; those "
          "central had not stored must be taken again", file=out)
    if report.key_ids:
        print(f"the restored store needs key id(s): {', '.join(report.key_ids)}", file=out)
    return 0


def new_store_command(config_path: Path, out: TextIO, *, force: bool = False) -> int:
    """Start an empty store; the old file (if any) is kept as ``<db>.retired-<time>``."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"booking-station: {exc}", file=out)
        return 2
    try:
        aside = backup.new_store(config.database_path, force=force)
    except StationError as exc:
        print(f"booking-station: {exc}", file=out)
        return 1
    print(f"new empty store at {config.database_path}", file=out)
    if aside is not None:
        print(f"the old database is kept as {aside}", file=out)
    return 0


def backup_command(config_path: Path, out: TextIO, *, keep: int = 7) -> int:
    """Take a backup now (the station may be running) and keep the newest ``keep``."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"booking-station: {exc}", file=out)
        return 2
    try:
        if not config.database_path.exists():
            print(f"booking-station: no database at {config.database_path}", file=out)
            return 1
        path = backup.take_backup(config.database_path, keep=keep,
                                  min_free_mb=config.store.min_free_mb)
    except StationError as exc:
        print(f"booking-station: {exc}", file=out)
        return 1
    print(f"backup written to {path}", file=out)
    return 0


def _usage_text(usage: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(usage.items())) or "(no rows)"


def _backup_key_ids(path: Path) -> list[str]:
    try:
        conn = connect_readonly(path)
        try:
            return list(key_usage(conn))
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return []
