"""`booking-central metrics` and `run --metrics-port` as Prometheus scrapes them: real processes,
a real broker, a real station delivering bookings."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys

import httpx
import paho.mqtt.client as mqtt
from prometheus_client.parser import text_string_to_metric_families

from appliance import __version__
from appliance.sync.config import TelemetrySettings
from appliance.sync.protocol import TransactionMeta
from tests.conftest import REPO, free_port
from tests.sync.conftest import commit_many

ALLOWED_LABELS = {"station", "state", "kind", "reason", "software", "protocol", "model",
                  "version", "le"}


def central(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "central.cli", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def started(proc: subprocess.Popen[str], word: str) -> None:
    line = await asyncio.to_thread(proc.stdout.readline)
    assert word in line, proc.stderr.read() if proc.poll() is not None else line


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 0, err
    return out


class Scrape:
    """One scrape, parsed: samples by name and labels."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = list(text_string_to_metric_families(text))
        self.samples = [s for f in self.families for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        for s in self.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        return None


async def scrape(port: int) -> Scrape:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    r.raise_for_status()
    return Scrape(r.text)


async def scrape_until(port: int, predicate, what: str) -> Scrape:
    last: list[Scrape] = []

    async def check() -> bool:
        last[:] = [await scrape(port)]
        return predicate(last[0])

    deadline = asyncio.get_running_loop().time() + 60
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"{what} never held"
        await asyncio.sleep(0.2)
    return last[0]


def publish_oversized_end(host: str, port: int) -> None:
    """A station announcing a transaction larger than central accepts."""
    size = 300 * 1024 * 1024
    meta = TransactionMeta("f" * 32, "0" * 64, size, -(-size // 130816), 130816,
                           "application/octet-stream", 1, True)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    try:
        client.publish(f"bst/st-9/tx/{'f' * 32}/end", meta.encode(), qos=1).wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()


async def test_fleet_and_receiver_metrics_scraped(mosquitto, service_rig, central_signing,
                                                  tmp_path, loop_errors) -> None:
    fleet_port, receiver_port = free_port(), free_port()
    fleet = central("metrics", "--host", mosquitto.host, "--port", str(mosquitto.port),
                    "--listen-port", str(fleet_port))
    receiver = central("run", "--host", mosquitto.host, "--port", str(mosquitto.port),
                       "--dir", str(tmp_path / "central"), "--metrics-port", str(receiver_port),
                       "--key", str(central_signing.private))
    try:
        await started(fleet, "central fleet")
        await started(receiver, "listening")
        rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False,
                                telemetry=TelemetrySettings(interval_s=0.2))
        txids, payloads = await commit_many(rig.store, 3, size=30_000, prefix="BK-SECRET-")
        rig.service.wake()
        await rig.wait_all_stored(txids)
        await asyncio.to_thread(publish_oversized_end, mosquitto.host, mosquitto.port)

        s = await scrape_until(
            fleet_port, lambda s: s.value("bst_station_delivered_transactions_total",
                                          station="st-1") == 3, "three deliveries in telemetry")
        assert s.value("bst_station_online", station="st-1") == 1
        assert s.value("bst_station_queue_transactions", station="st-1") == 0
        assert s.value("bst_station_oldest_unsent_age_seconds", station="st-1") == 0
        assert s.value("bst_station_scanner_state", station="st-1", state="ready") == 1
        assert s.value("bst_station_scanner_state", station="st-1", state="disconnected") == 0
        assert s.value("bst_station_bookings_today", station="st-1") == 3
        assert s.value("bst_station_disk_free_bytes", station="st-1") > 0
        assert s.value("bst_station_disk_size_bytes", station="st-1") >= \
            s.value("bst_station_disk_free_bytes", station="st-1")
        assert s.value("bst_station_clock_trusted", station="st-1") == 1
        assert s.value("bst_station_signature_failures_total", station="st-1",
                       kind="command") == 0
        assert s.value("bst_station_build_info", station="st-1", software=__version__) == 1
        assert s.value("bst_station_model_info", station="st-1", model="minutiae",
                       version="test-1") == 1
        assert s.value("bst_station_last_seen_timestamp_seconds", station="st-1") > 0
        assert s.value("bst_fleet_telemetry_messages_total") >= 2
        assert s.value("bst_station_drain_transactions_per_second", station="st-1") >= 0

        r = await scrape_until(receiver_port,
                               lambda r: r.value("bst_central_transactions_rejected_total",
                                                 reason="too_large") == 1,
                               "the oversized transaction refused")
        assert r.value("bst_central_transactions_held") == 3
        assert r.value("bst_central_transactions_stored_total") == 3
        assert r.value("bst_central_stored_bytes_total") == sum(len(p) for p in payloads)
        assert r.value("bst_central_assembly_seconds_count") == 3
        assert r.value("bst_central_transactions_rejected_total", reason="checksum") == 0

        for exposition in (s, r):
            for family in exposition.families:
                assert family.name.startswith(("bst_station_", "bst_fleet_", "bst_central_",
                                               "python_", "process_")), family.name
                if family.type == "counter":
                    assert all(x.name.endswith(("_total", "_created")) for x in family.samples)
            for sample in exposition.samples:
                assert set(sample.labels) <= ALLOWED_LABELS, sample
            # no booking data: no booking number, no transaction id anywhere in the text
            assert "BK-SECRET" not in exposition.text
            assert not any(t in exposition.text for t in txids)

        await rig.service.stop()
        s = await scrape_until(fleet_port, lambda s: s.value("bst_station_online",
                                                             station="st-1") == 0,
                               "the station's clean stop seen")
    finally:
        stopped = await asyncio.gather(asyncio.to_thread(stop, fleet),
                                       asyncio.to_thread(stop, receiver),
                                       return_exceptions=True)
    for outcome in stopped:
        if isinstance(outcome, BaseException):
            raise outcome
    assert "telemetry messages absorbed" in stopped[0]


async def test_scanner_unplugged_and_signature_failures_reach_the_metrics(
        mosquitto, tmp_path) -> None:
    """Telemetry a station would send, published as it would: the exporter reports it."""
    fleet_port = free_port()
    fleet = central("metrics", "--host", mosquitto.host, "--port", str(mosquitto.port),
                    "--listen-port", str(fleet_port))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        await started(fleet, "central fleet")
        client.connect(mosquitto.host, mosquitto.port)
        client.loop_start()
        health = {"station_id": "st-7", "queue_depth": 4, "oldest_unsent_age_s": 7300.0,
                  "disk_free_mb": 50, "disk_total_mb": 1000, "scanner_state": "disconnected",
                  "clock": "unsynchronised", "clock_problem": "", "nfiq2_median_today": 61.5,
                  "command_signature_failures": 2, "receipt_signature_failures": 1,
                  "uploads_paused": True}
        client.publish("bst-telemetry/st-7/health", json.dumps(health), qos=1)
        client.publish("bst-telemetry/st-7/health", b"not json", qos=1)
        s = await scrape_until(fleet_port, lambda s: s.value(
            "bst_fleet_telemetry_malformed_messages_total") == 1, "the malformed message counted")
        assert s.value("bst_station_scanner_state", station="st-7", state="disconnected") == 1
        assert s.value("bst_station_oldest_unsent_age_seconds", station="st-7") == 7300
        assert s.value("bst_station_disk_free_bytes", station="st-7") == 50 * 1024 * 1024
        assert s.value("bst_station_clock_trusted", station="st-7") == 0
        assert s.value("bst_station_nfiq2_median_today", station="st-7") == 61.5
        assert s.value("bst_station_signature_failures_total", station="st-7",
                       kind="receipt") == 1
        assert s.value("bst_station_uploads_paused", station="st-7") == 1
        assert s.value("bst_fleet_stations") == 1
    finally:
        client.loop_stop()
        client.disconnect()
        await asyncio.to_thread(stop, fleet)


async def test_fleet_side_refuses_foreign_hosts_and_cross_site_requests(mosquitto) -> None:
    fleet_port = free_port()
    fleet = central("metrics", "--host", mosquitto.host, "--port", str(mosquitto.port),
                    "--listen-port", str(fleet_port))
    try:
        await started(fleet, "central fleet")
        base = f"http://127.0.0.1:{fleet_port}"
        async with httpx.AsyncClient() as client:
            ok = await client.get(f"{base}/metrics", timeout=30)
            assert ok.status_code == 200
            assert "default-src 'none'" in ok.headers["content-security-policy"]
            rebound = await client.get(f"{base}/metrics", headers={"Host": "evil.example"})
            assert rebound.status_code == 400
            cross = await client.get(f"{base}/api/stations",
                                     headers={"Origin": "http://evil.example"})
            assert cross.status_code == 403
            fetched = await client.get(f"{base}/api/stations",
                                       headers={"Sec-Fetch-Site": "cross-site"})
            assert fetched.status_code == 403
            post = await client.post(f"{base}/api/stations", json={})
            assert post.status_code == 405
    finally:
        await asyncio.to_thread(stop, fleet)
