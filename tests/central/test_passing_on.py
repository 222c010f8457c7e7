"""The other half of the receipt: where central passed each transaction on, asked by the
station over MQTT and by an auditor on the command line, and `booking-central export`."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import psycopg

from appliance.sync.protocol import TransactionMeta
from tests.central.test_metrics import central, started, stop
from tests.conftest import REPO, until
from tests.sync.conftest import commit_many


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "central.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def ask_as(station: str, txid: str, host: str, port: int) -> dict:
    """A station's raw query for a transaction id; returns central's answer."""
    answers: list[bytes] = []
    got = threading.Event()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = lambda _c, _u, m: (answers.append(bytes(m.payload)), got.set())
    client.connect(host, port)
    client.loop_start()
    try:
        client.subscribe(f"bst/{station}/passed-on", qos=1)
        assert subscribed.wait(30)
        client.publish(f"bst/{station}/tx/{txid}/query", b"", qos=1).wait_for_publish(30)
        assert got.wait(30), "central never answered the query"
        return json.loads(answers[0])
    finally:
        client.loop_stop()
        client.disconnect()


async def test_passed_on_recorded_answered_and_exported(mosquitto, service_rig, central_signing,
                                                        tmp_path, loop_errors) -> None:
    store_dir, afis = tmp_path / "central", tmp_path / "afis-import"
    receiver = central("run", "--host", mosquitto.host, "--port", str(mosquitto.port),
                       "--dir", str(store_dir), "--destination", "AFIS|identification",
                       "--destination", "Archive|records|optional", "--pass-on", f"AFIS={afis}",
                       "--key", str(central_signing.private))
    try:
        await started(receiver, "listening")
        rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False)
        txids, payloads = await commit_many(rig.store, 2, size=10_000, prefix="BK-SECRET-")
        rig.service.wake()
        await rig.wait_all_stored(txids)

        answer = await rig.service.passed_on(txids[0])
        assert answer["held"] is True and answer["transaction_id"] == txids[0]
        # the receipt listed both; only the destination with a courier actually took it
        assert [d["name"] for d in answer["shared_with"]] == ["AFIS", "Archive"]
        assert [(d["name"], d["purpose"]) for d in answer["passed_on"]] == [
            ("AFIS", "identification")]
        assert (afis / "st-1" / f"{txids[0]}.an2").read_bytes() == payloads[0]
        receipt = json.loads(rig.store.bookings()[-1].receipt)
        assert answer["receipt"] in {receipt["receipt"],
                                     json.loads(rig.store.bookings()[0].receipt)["receipt"]}

        # another station learns nothing about st-1's transactions; nor does anyone about an
        # unknown one
        other = await asyncio.to_thread(ask_as, "st-2", txids[0], mosquitto.host, mosquitto.port)
        assert other == {"v": 1, "transaction_id": txids[0], "held": False, "passed_on": []}
        unknown = await asyncio.to_thread(ask_as, "st-1", "0" * 32, mosquitto.host,
                                          mosquitto.port)
        assert unknown["held"] is False
    finally:
        await asyncio.to_thread(stop, receiver)

    audit = cli("query", "--dir", str(store_dir), txids[1])
    assert audit.returncode == 0, audit.stderr
    record = json.loads(audit.stdout)
    assert record["station"] == "st-1" and record["size"] == 10_000
    assert [d["name"] for d in record["passed_on"]] == ["AFIS"]
    assert cli("query", "--dir", str(store_dir), "0" * 32).returncode == 1

    lines = cli("export", "--dir", str(store_dir), "--format", "jsonl")
    assert lines.returncode == 0, lines.stderr
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert sorted(r["transaction_id"] for r in rows) == sorted(txids)
    assert all(r["passed_on"][0]["name"] == "AFIS" and r["deliveries"] == 1 for r in rows)
    out = tmp_path / "held.csv"
    table = cli("export", "--dir", str(store_dir), "--format", "csv", "--out", str(out))
    assert table.returncode == 0, table.stderr
    parsed = list(csv.DictReader(io.StringIO(out.read_text())))
    assert sorted(r["transaction_id"] for r in parsed) == sorted(txids)
    assert {r["shared_with"] for r in parsed} == {"AFIS;Archive"}
    assert all(r["passed_on"].startswith("AFIS@") for r in parsed)
    for text in (lines.stdout, out.read_text()):  # metadata only
        assert "BK-SECRET" not in text
        assert not any(p[:32].hex() in text for p in payloads)


async def test_shared_receivers_pass_on_once_and_retry_a_destination_that_was_down(
        mosquitto, postgres, service_rig, central_signing, tmp_path, loop_errors) -> None:
    afis = tmp_path / "afis-import"
    afis.write_text("not a folder")  # the destination is down: nothing can be written there
    receivers = [
        central("run", "--host", mosquitto.host, "--port", str(mosquitto.port),
                "--postgres", postgres, "--client-id", name,
                "--destination", "AFIS|identification", "--destination", "Archive|records",
                "--pass-on", f"AFIS={afis}", "--pass-on-retry", "1",
                "--key", str(central_signing.private))
        for name in ("central-a", "central-b")]
    try:
        for receiver in receivers:
            await started(receiver, "listening")
        rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False)
        txids, payloads = await commit_many(rig.store, 3, size=10_000, prefix="BK-SECRET-")
        rig.service.wake()
        await rig.wait_all_stored(txids)
        # held, answered, and not passed on while AFIS refuses
        answer = await rig.service.passed_on(txids[0])
        assert answer["held"] is True and answer["passed_on"] == []
        assert [d["name"] for d in answer["shared_with"]] == ["AFIS", "Archive"]

        afis.unlink()  # AFIS is back: the next round hands everything over
        for txid, payload in zip(txids, payloads, strict=True):
            await until(lambda t=txid: (afis / "st-1" / f"{t}.an2").exists(), timeout=120,
                        what="the transaction passed on to AFIS")
            assert (afis / "st-1" / f"{txid}.an2").read_bytes() == payload

        def recorded() -> list[tuple[str, str, str]]:
            with psycopg.connect(postgres) as db:
                return db.execute("SELECT transaction_id, destination, passed_by FROM passed_on"
                                  " ORDER BY transaction_id").fetchall()

        await until(lambda: len(recorded()) == len(txids), timeout=120,
                    what="every hand-off recorded")
        rows = recorded()
        assert sorted(t for t, _, _ in rows) == sorted(txids)  # once each
        assert {d for _, d, _ in rows} == {"AFIS"}
        assert {by for _, _, by in rows} <= {"central-a", "central-b"}
        with psycopg.connect(postgres) as db:
            assert db.execute("SELECT COUNT(*) FROM held WHERE pass_on_due").fetchone()[0] == 0
        answer = await rig.service.passed_on(txids[1])
        assert [(d["name"], d["purpose"]) for d in answer["passed_on"]] == [
            ("AFIS", "identification")]
    finally:
        for receiver in receivers:
            await asyncio.to_thread(stop, receiver)

    audit = cli("query", "--postgres", postgres, txids[2])
    assert audit.returncode == 0, audit.stderr
    record = json.loads(audit.stdout)
    assert record["station"] == "st-1" and record["deliveries"] == 1
    assert [d["name"] for d in record["passed_on"]] == ["AFIS"]
    assert cli("query", "--postgres", postgres, "0" * 32).returncode == 1
    lines = cli("export", "--postgres", postgres)
    assert lines.returncode == 0, lines.stderr
    rows = [json.loads(line) for line in lines.stdout.splitlines()]
    assert sorted(r["transaction_id"] for r in rows) == sorted(txids)
    assert all([d["name"] for d in r["passed_on"]] == ["AFIS"] for r in rows)
    assert "BK-SECRET" not in lines.stdout
    refused = cli("export", "--postgres", "postgresql://postgres@127.0.0.1:1/none")
    assert refused.returncode == 2 and "cannot open" in refused.stderr


async def test_a_refusing_destination_costs_one_try_per_round_and_keeps_the_row_due(
        postgres, loop_errors) -> None:
    from central.receiver import Destination
    from central.shared import PassOn, SharedStore

    store = SharedStore(postgres)
    txids = [f"{n:032x}" for n in range(1, 4)]
    for n, txid in enumerate(txids):
        data = bytes([n]) * 100
        meta = TransactionMeta(txid, hashlib.sha256(data).hexdigest(), len(data), 1, 100,
                               "application/octet-stream", 0, True)
        won, _ = store.hold("st-1", meta, data, {"receipt": f"R-{n}", "stored_at": f"2026-{n}"},
                            "central-a", pass_on=True)
        assert won
    afis: list[str] = []
    archive_tries: list[str] = []
    archive_up = threading.Event()

    def archive(_station: str, txid: str, _data: bytes) -> None:
        archive_tries.append(txid)
        if not archive_up.is_set():
            raise OSError("archive share unreachable")

    worker = PassOn(postgres, [Destination("AFIS", "identification", True),
                               Destination("Archive", "records", True)],
                    {"AFIS": lambda _s, txid, _d: afis.append(txid), "Archive": archive},
                    "central-a", retry_s=3600)
    worker.start()  # its first round looks for due rows at once
    try:
        await until(lambda: len(afis) == 3, timeout=60, what="AFIS took all three")
        assert sorted(afis) == txids and len(archive_tries) == 1  # one refusal per round
        due = lambda: store._db.execute(  # noqa: E731
            "SELECT COUNT(*) FROM held WHERE pass_on_due").fetchone()[0]
        assert due() == 3
        assert [d["name"] for d in store.held(txids[0])["passed_on"]] == ["AFIS"]
        archive_up.set()
        worker.wake()
        await until(lambda: due() == 0, timeout=60, what="the archive took the rest")
        assert sorted(afis) == txids  # AFIS is not given them again
        record = store.held(txids[2])
        assert sorted(d["name"] for d in record["passed_on"]) == ["AFIS", "Archive"]
        assert [r["transaction_id"] for r in store.export()] == txids  # oldest first
    finally:
        worker.stop()
        store.close()
