"""Passing stored transactions on, and saying afterwards where each one went.

A courier takes one stored transaction to one destination of the sharing manifest and raises
when the destination did not take it. The receiver records each successful hand-off
(``passed_on``), answers a station's ``query`` from that record, and ``booking-central export``
and ``booking-central query`` read it for an auditor. The reference courier drops the bytes
into a folder (a file share, an AFIS import directory); an integrator registers their own.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

#: The index columns a held record is made of, in the order :func:`held_record` reads them.
HELD_COLUMNS = ("transaction_id", "station", "sha256", "size", "content_type", "receipt",
                "stored_at", "deliveries")
#: (destination, purpose, passed_at) of one hand-off.
Handoff = tuple[str, str, str]

EXPORT_FIELDS = ("transaction_id", "station", "stored_at", "receipt", "sha256", "size",
                 "content_type", "deliveries", "manifest_version", "shared_with", "passed_on")


class FolderCourier:
    """Writes each transaction durably into ``folder/<station>/<txid>.an2``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, station: str, txid: str, data: bytes) -> None:
        """Hand one transaction over; raises OSError when the folder does not take it."""
        target = self.folder / station
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".{txid}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target / f"{txid}.an2")


def held_record(row: tuple[Any, ...], passed: Iterable[Handoff]) -> dict[str, Any]:
    """What central holds about one transaction, metadata only.

    ``row`` is its index row (:data:`HELD_COLUMNS`), ``passed`` its hand-offs (oldest first).
    """
    txid, station, sha, size, content_type, receipt, stored_at, deliveries = row
    body = json.loads(receipt)
    return {
        "transaction_id": txid, "station": station, "sha256": sha, "size": size,
        "content_type": content_type, "receipt": body.get("receipt", ""), "stored_at": stored_at,
        "deliveries": deliveries, "manifest_version": body.get("manifest_version", ""),
        "shared_with": body.get("shared_with", []),
        "passed_on": [{"name": d, "purpose": p, "at": at}
                      for d, p, at in sorted(passed, key=lambda h: (h[2], h[0]))],
    }


def held_records(page: Callable[[tuple[str, str]], list[tuple[Any, ...]]],
                 handoffs: Callable[[list[str]], Iterable[tuple[str, str, str, str]]]
                 ) -> Iterator[dict[str, Any]]:
    """Every transaction an index holds, oldest first, read a page at a time.

    ``page(after)`` gives the index rows after the (stored_at, transaction_id) ``after``;
    ``handoffs(ids)`` the (transaction_id, destination, purpose, passed_at) of those ids.
    """
    after = ("", "")
    while rows := page(after):
        passed: dict[str, list[Handoff]] = {}
        for txid, dest, purpose, at in handoffs([r[0] for r in rows]):
            passed.setdefault(txid, []).append((dest, purpose, at))
        for row in rows:
            yield held_record(row, passed.get(row[0], []))
        after = (rows[-1][6], rows[-1][0])


def export_lines(records: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """What central holds, as JSON lines or CSV (metadata only: no bytes, no booking data)."""
    if fmt == "jsonl":
        for record in records:
            yield json.dumps({k: record[k] for k in EXPORT_FIELDS}, sort_keys=True) + "\n"
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    for record in records:
        row = dict(record)
        row["shared_with"] = ";".join(d["name"] for d in record["shared_with"])
        row["passed_on"] = ";".join(f"{d['name']}@{d['at']}" for d in record["passed_on"])
        writer.writerow([row[k] for k in EXPORT_FIELDS])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    if buf.getvalue():
        yield buf.getvalue()
