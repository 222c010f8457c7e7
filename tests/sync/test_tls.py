"""Mutual TLS against a real Mosquitto TLS listener, with a CA made in the test."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.sync.config import TlsSection
from appliance.sync.service import SyncService
from appliance.sync.tls import TlsSetupError, client_context, clock_against_certificate
from central.commands import CommandClient
from tests.conftest import until
from tests.sync.conftest import commit_many, station_config, store_health
from tests.sync.pki import Pki

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


def central_context(pki: Pki, cn: str = "central") -> ssl.SSLContext:
    return client_context(pki.client_section(cn))


def test_context_is_mutual_tls_1_2_or_newer(pki: Pki) -> None:
    ctx = client_context(pki.client_section("st-1"))
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


def test_unusable_tls_files_are_named(pki: Pki, tmp_path: Path) -> None:
    good = pki.client_section("st-1")
    _, other_key = pki.issue("other")
    with pytest.raises(TlsSetupError, match="do not match"):
        client_context(TlsSection(ca_file=good.ca_file, cert_file=good.cert_file,
                                  key_file=other_key))
    with pytest.raises(TlsSetupError, match="CA file"):
        client_context(TlsSection(ca_file=tmp_path / "absent.pem", cert_file=good.cert_file,
                                  key_file=good.key_file))


async def test_bookings_delivered_over_mutual_tls(pki, mosquitto_factory, service_rig,
                                                  loop_errors) -> None:
    broker = mosquitto_factory(pki.broker_lines())
    rig = await service_rig(broker.host, broker.port, tls=pki.client_section("st-1"),
                            receiver_tls=central_context(pki))
    txids, payloads = await commit_many(rig.store, 4, size=60_000)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)
    assert rig.service.link.counters.tls_failures == 0


async def test_client_without_certificate_is_refused(pki, mosquitto_factory, service_rig,
                                                     loop_errors) -> None:
    broker = mosquitto_factory(pki.broker_lines())
    no_cert = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    no_cert.load_verify_locations(cafile=str(pki.ca_file))
    store_dir_rig = await service_rig(broker.host, broker.port, receiver=False, connect=False,
                                      tls=pki.client_section("st-1"))
    # the same station config, but the TLS context presents no certificate
    svc = store_dir_rig.service
    await svc.stop()
    bare = SyncService(svc.station_id, svc.mqtt, store_dir_rig.store, svc.hooks,
                       tls_context=no_cert)
    store_dir_rig.service = bare
    bare.start(asyncio.get_running_loop())
    await until(lambda: bare.link.counters.tls_failures >= 2
                     and [e for e in store_dir_rig.events if e.get("kind") == "tls"])
    assert bare.link.counters.connects == 0 and not bare.link.connected
    assert not bare.link.counters.clock_problem


@pytest.mark.parametrize("window", ["not_yet_valid", "expired"])
async def test_wrong_clock_is_reported_as_clock_problem(pki, mosquitto_factory, service_rig,
                                                        window, loop_errors) -> None:
    """The broker's certificate looks outside its validity: to this station, a clock problem."""
    now = datetime.now(UTC)
    validity = ({"not_before": now + timedelta(days=30), "not_after": now + timedelta(days=400)}
                if window == "not_yet_valid" else
                {"not_before": now - timedelta(days=400), "not_after": now - timedelta(days=30)})
    broker = mosquitto_factory(pki.broker_lines(**validity))
    rig = await service_rig(broker.host, broker.port, tls=pki.client_section("st-1"),
                            receiver=False, connect=False)
    link = rig.service.link
    def clock_alerts() -> list[dict]:
        return [e for e in rig.events if e.get("type") == "alert" and e["kind"] == "clock"]

    await until(lambda: link.counters.tls_failures >= 3 and clock_alerts())
    assert "clock" in link.counters.clock_problem
    assert link.counters.connects == 0
    assert len(clock_alerts()) == 1, "one alert, not one per reconnect attempt"
    assert not rig.service._clock_trusted()
    health = await rig.service.publish_health()
    assert "clock" in health.clock_problem


def test_own_certificate_window_exposes_a_clock_behind(pki: Pki) -> None:
    cert, _ = pki.issue("st-9", not_before=datetime.now(UTC) - timedelta(days=2))
    assert clock_against_certificate(cert) is None
    assert "clock" in clock_against_certificate(cert, now=datetime(1970, 1, 2, tzinfo=UTC))


async def test_acl_lets_only_central_command_a_station(pki, mosquitto_factory, service_rig,
                                                       tmp_path, central_signing,
                                                       loop_errors) -> None:
    """The production ACL example (docs/mosquitto-acl.conf) on a real mutual-TLS broker."""
    acl = REPO / "docs" / "mosquitto-acl.conf"
    broker = mosquitto_factory(pki.broker_lines() + f"acl_file {acl}\n")
    rig = await service_rig(broker.host, broker.port, tls=pki.client_section("st-1"),
                            receiver_tls=central_context(pki))
    central = CommandClient(broker.host, broker.port, tls=central_context(pki),
                            client_id="ops-central", key=central_signing.key)
    # signed with central's key too, so that only the ACL stands in its way
    intruder = CommandClient(broker.host, broker.port, tls=central_context(pki, "st-2"),
                             client_id="ops-intruder", key=central_signing.key)
    await asyncio.to_thread(central.connect)
    await asyncio.to_thread(intruder.connect)
    try:
        answer = await asyncio.to_thread(central.request, "st-1", "pause")
        assert answer["ok"] and answer["result"] == {"paused": True}
        # another station's certificate: the broker drops the command; the station never sees it
        with pytest.raises(TimeoutError):
            await asyncio.to_thread(intruder.request, "st-1", "resume", timeout=2)
        assert rig.service.uploader.paused
        await asyncio.to_thread(central.request, "st-1", "resume")
    finally:
        await asyncio.to_thread(central.close)
        await asyncio.to_thread(intruder.close)
    audited = [e for e in await asyncio.to_thread(audit_entries, rig.store)
               if e["action"] == "remote_command"]
    assert [e["detail"]["command"] for e in audited] == ["pause", "resume"]
    # and the station, allowed its own topics, still delivers
    txids, payloads = await commit_many(rig.store, 2)
    rig.service.wake()
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)
    # the ACL lets central answer, and the station hear, where a booking was passed on
    assert (await rig.service.passed_on(txids[0]))["held"] is True


def audit_entries(store) -> list[dict]:
    import json

    rows = store.read(lambda c: c.execute(
        "SELECT actor, action, detail FROM audit_log ORDER BY seq").fetchall())
    return [{"actor": a, "action": b, "detail": json.loads(d)} for a, b, d in rows]


__all__ = ["station_config", "store_health"]
