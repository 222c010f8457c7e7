"""No log line the store writes, even at DEBUG, holds personal data or blob bytes."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.cli.store import rotate_key_command
from appliance.store.backup import restore_backup
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.drafts import DraftStore
from appliance.store.errors import DiskFull, StoreCorrupt
from appliance.store.store import Store, encode_png
from tests.store.conftest import SUBJECT, make_booking

NUMBER = "BK-SECRET-4711"
TEMPLATE = b"FMR\0MINUTIAE-SECRET-BYTES"
TX = b"1.001:SECRET-TRANSACTION-" + bytes(range(256)) * 8


def needles(store_path: Path, images: list[bytes]) -> list[str]:
    """Text that must not appear: personal fields, and blob bytes in any printable form."""
    texts = [NUMBER, SUBJECT.last_name, SUBJECT.first_name, SUBJECT.date_of_birth,
             "MINUTIAE-SECRET", "SECRET-TRANSACTION"]
    blobs = [TX[30:62], TEMPLATE, *(img[60:92] for img in images)]
    for raw in blobs:
        texts += [raw.hex(), repr(raw)[2:-1][:40]]
    return texts


async def test_store_logs_hold_no_booking_numbers_subjects_or_blobs(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key, key2 = new_key(), new_key()
    db = tmp_path / "data" / "station.db"
    store = Store(db, BlobCipher(key))
    store.open()
    booking = make_booking(NUMBER)
    images = [encode_png(i.image) for i in booking.impressions]
    try:
        draft = make_booking(NUMBER, prints=1)
        drafts = DraftStore(store)
        await drafts.begin(draft)
        await drafts.accept(draft, draft.impressions[0])
        txid = await store.commit_booking(
            booking, TX, templates={booking.impressions[0].impression_id: {"iso": TEMPLATE}})
        await store.mark_sending(txid)
        await store.mark_retry(txid, 0, "link down")
        await store.backup_now()
        await store.mark_stored(txid, {"receipt": "R-1"})
        await store.run_retention(grace=timedelta(0), retention=timedelta(days=365),
                                  now=datetime.now(UTC) + timedelta(days=400))
        await store.commit_booking(make_booking(NUMBER, seed=2), TX)
        store.min_free_mb = 10**9
        with pytest.raises(DiskFull):
            await store.commit_booking(make_booking(NUMBER, seed=3), TX)
    finally:
        store.close()

    key_file, new_file = tmp_path / "db.key", tmp_path / "new.key"
    for path, k in ((key_file, key), (new_file, key2)):
        path.write_text(k.hex())
        path.chmod(0o600)
    config = tmp_path / "config.toml"
    config.write_text(f'[station]\ndata_dir = "{db.parent}"\n[store]\nkey_file = "{key_file}"\n')
    assert await asyncio.to_thread(rotate_key_command, config, new_file, io.StringIO()) == 0

    restore_backup(db)
    data = bytearray(db.read_bytes())
    data[4096:3 * 4096] = b"\x5a" * 8192
    db.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt):
        Store(db, BlobCipher(key2, previous=[key])).open()

    store_records = [r for r in caplog.records if r.name.startswith("appliance.store")]
    messages = {r.getMessage() for r in store_records}
    assert any("backup written" in m for m in messages)  # the test saw the store's logging
    assert any("retention deleted" in m for m in messages)
    assert any("key rotation" in m for m in messages)
    formatter = logging.Formatter()
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += formatter.formatException(record.exc_info)
        for needle in needles(db, images):
            assert needle not in text, f"{record.name} logged {needle[:20]!r}…: {text[:200]}"
