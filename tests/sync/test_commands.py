"""Remote commands as MQTT 5 request/response, against a real broker and the real service."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.sync.commands import CommandGate, CommandRefused, canonical, sign
from appliance.sync.config import CommandSettings
from appliance.sync.service import SyncService
from appliance.sync.signing import CentralKeys
from central.commands import CommandClient, command_body
from tests.conftest import until
from tests.store.conftest import SUBJECT
from tests.sync.conftest import commit_many
from tests.sync.test_tls import audit_entries

SIGNED = object()


@pytest.fixture
async def ops(mosquitto, central_signing):
    """Operators' command clients; by default they sign with central's key, as production."""
    clients: list[CommandClient] = []

    async def make(key=SIGNED) -> CommandClient:
        key = central_signing.key if key is SIGNED else key
        client = CommandClient(mosquitto.host, mosquitto.port, key=key)
        await asyncio.to_thread(client.connect)
        clients.append(client)
        return client

    yield make
    for c in clients:
        await asyncio.to_thread(c.close)


async def request(client: CommandClient, command: str, args=None, **kw) -> dict:
    return await asyncio.to_thread(client.request, "st-1", command, args, **kw)


async def send(client: CommandClient, payload: bytes, **kw) -> dict:
    return await asyncio.to_thread(client.send, "st-1", payload, **kw)


async def drain_looked(rig) -> None:
    """Wake the drain and wait until it has passed over the outbox since (a proof of absence)."""
    uploader = rig.service.uploader
    seen = uploader.looks
    rig.service.wake()
    await until(lambda: uploader.looks >= seen + 2, what="two passes of the drain")


def remote_audit(store) -> list[dict]:
    return [e for e in audit_entries(store) if e["action"] == "remote_command"]


async def test_every_command_answers_and_acts(mosquitto, service_rig, ops, loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port)
    client = await ops()
    pong = await request(client, "ping")
    assert pong["ok"] and pong["result"]["pong"] and pong["station_id"] == "st-1"

    diag = await request(client, "diagnostics")
    assert diag["result"]["link"]["connected"] is True
    assert diag["result"]["station"] == {"scanner": {"state": "ready"}}

    assert (await request(client, "pause"))["result"] == {"paused": True}
    txids, payloads = await commit_many(rig.store, 2)
    await drain_looked(rig)
    assert {rig.store.outbox_state(t) for t in txids} == {"queued"}, "paused means no uploads"

    answer = await request(client, "throttle", {"rate_per_s": 5})
    assert answer["result"] == {"rate_per_s": 5.0} and rig.service.uploader.rate_per_s == 5.0
    assert (await request(client, "resume"))["result"] == {"paused": False}
    await rig.wait_all_stored(txids)
    rig.assert_exactly_once(txids, payloads)

    done = await request(client, "sync_now")
    assert done["ok"] and done["result"] == {"made_due": 0}
    names = [(e["detail"]["command"], e["detail"]["outcome"]) for e in remote_audit(rig.store)]
    assert names == [("ping", "done"), ("diagnostics", "done"), ("pause", "done"),
                     ("throttle", "done"), ("resume", "done"), ("sync_now", "done")]
    assert all(e["actor"] == "central" for e in remote_audit(rig.store))


async def test_sync_now_ends_a_backoff(mosquitto, service_rig, ops, loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port)
    txids, _ = await commit_many(rig.store, 1)
    await rig.store.mark_retry(txids[0], 3600, "test backoff")  # as after failed attempts
    await drain_looked(rig)
    assert rig.store.outbox_state(txids[0]) == "queued"
    answer = await request(await ops(), "sync_now")
    assert answer["result"] == {"made_due": 1}
    await rig.wait_all_stored(txids)


async def test_answer_repeats_the_correlation_data(mosquitto, service_rig, ops, central_signing,
                                                   capture_factory) -> None:
    await service_rig(mosquitto.host, mosquitto.port)
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst/st-1/reply/#")
    client = await ops()
    correlation = secrets.token_bytes(24)
    await send(client, json.dumps(command_body("ping", key=central_signing.key)).encode(),
               correlation=correlation)
    reply = await cap.wait_for(lambda m: True)
    assert json.loads(reply.payload)["ok"] is True
    assert reply.properties.CorrelationData == correlation
    assert reply.topic == client.reply_topic("st-1")


@pytest.mark.parametrize(("command", "args", "reason"), [
    ("reboot", None, "unknown command"),
    ("throttle", {"rate_per_s": -1}, "between 0 and"),
    ("throttle", {"rate_per_s": "fast"}, "between 0 and"),
    ("throttle", {"rate_per_s": 1e9}, "between 0 and"),
    ("pause", {"minutes": 5}, "no arguments"),
    ("diagnostics", None, "not allowed"),
])
async def test_allow_list_and_arguments(mosquitto, service_rig, ops, command, args,
                                        reason) -> None:
    commands = CommandSettings(allowed=("ping", "pause", "resume", "throttle", "sync_now"))
    rig = await service_rig(mosquitto.host, mosquitto.port, commands=commands)
    answer = await request(await ops(), command, args)
    assert answer["ok"] is False and reason in answer["error"]
    assert rig.service.uploader.rate_per_s == 0.0 and not rig.service.uploader.paused
    [entry] = remote_audit(rig.store)
    assert entry["detail"]["outcome"] == "refused" and reason in entry["detail"]["reason"]


async def test_signed_commands(mosquitto, service_rig, ops, central_signing,
                               loop_errors) -> None:
    key = central_signing.key
    rig = await service_rig(mosquitto.host, mosquitto.port,
                            commands=CommandSettings(max_age_s=60))
    signed = await ops(key)
    unsigned = await ops(None)
    impostor = await ops(Ed25519PrivateKey.generate())

    assert (await request(signed, "pause"))["ok"]
    answer = await request(unsigned, "resume")
    assert not answer["ok"] and "unsigned" in answer["error"]
    answer = await request(impostor, "resume")
    assert not answer["ok"] and answer["error"] == "signed by an unknown key"
    forged = command_body("resume", key=Ed25519PrivateKey.generate())
    forged["kid"] = command_body("ping", key=key)["kid"]  # claims central's key id
    answer = await send(signed, json.dumps(forged).encode())
    assert not answer["ok"] and answer["error"] == "bad signature"
    assert rig.service.uploader.paused

    replay = json.dumps(command_body("resume", key=key)).encode()
    assert (await send(signed, replay))["ok"]
    answer = await send(signed, replay)  # the same bytes again
    assert not answer["ok"] and "replayed" in answer["error"]

    old = json.dumps(command_body("pause", key=key, now=time.time() - 3600)).encode()
    answer = await send(signed, old)
    assert not answer["ok"] and "away from this station's clock" in answer["error"]
    assert not rig.service.uploader.paused

    body = command_body("throttle", {"rate_per_s": 1}, key=key)
    body["args"]["rate_per_s"] = 50  # tampered after signing
    answer = await send(signed, json.dumps(body).encode())
    assert answer["error"] == "bad signature" and rig.service.uploader.rate_per_s == 0
    # telemetry counts them for central operations: unsigned, impostor, forged, tampered
    assert (await rig.service.publish_health()).command_signature_failures == 4

    outcomes = [(e["detail"]["command"], e["detail"]["outcome"], e["detail"].get("signed"))
                for e in remote_audit(rig.store)]
    assert outcomes == [("pause", "done", True), ("resume", "refused", None),
                        ("resume", "refused", None), ("resume", "refused", None),
                        ("resume", "done", True),
                        ("resume", "refused", None), ("pause", "refused", None),
                        ("throttle", "refused", None)]


async def test_reply_topic_outside_the_station_space_is_refused(mosquitto, service_rig, ops,
                                                                central_signing,
                                                                capture_factory) -> None:
    """A command cannot make the station publish anywhere else (no confused deputy)."""
    rig = await service_rig(mosquitto.host, mosquitto.port)
    cap = capture_factory(mosquitto.host, mosquitto.port, "#")
    client = await ops()
    for topic in ("bst/st-2/reply/x", "bst/st-1/ack", "bst-telemetry/st-1/status",
                  "elsewhere"):
        body = command_body("pause", key=central_signing.key)
        with pytest.raises(TimeoutError):
            await send(client, json.dumps(body).encode(), reply_topic=topic, timeout=0.7)
    assert not rig.service.uploader.paused
    assert all(m.topic in ("bst/st-1/cmd", "bst-telemetry/st-1/status") for m in cap.messages)
    assert {e["detail"]["outcome"] for e in remote_audit(rig.store)} == {"refused"}



async def test_replay_after_restart_is_refused(mosquitto, service_rig, ops, central_signing,
                                               loop_errors) -> None:
    """The used-nonce memory survives a restart: it is recalled from the audit log."""
    key = central_signing.key
    rig = await service_rig(mosquitto.host, mosquitto.port,
                            commands=CommandSettings(max_age_s=60))
    signed = await ops(key)
    captured = json.dumps(command_body("pause", key=key)).encode()
    assert (await send(signed, captured))["ok"]
    assert (await request(signed, "resume"))["ok"]
    await rig.service.stop()

    again = SyncService(rig.service.station_id, rig.service.mqtt, rig.store, rig.service.hooks)
    again.start(asyncio.get_running_loop())
    try:
        deadline = time.monotonic() + 10
        while not again.link.connected:
            assert time.monotonic() < deadline, again.link.counters.last_error
            await asyncio.sleep(0.05)
        answer = await send(signed, captured)  # an eavesdropper's copy, sent after the restart
        assert not answer["ok"] and "replayed" in answer["error"]
        assert not again.uploader.paused
        fresh = await request(signed, "pause")  # a new signed command still runs
        assert fresh["ok"] and again.uploader.paused
    finally:
        await again.stop()

async def test_audit_holds_no_personal_data(mosquitto, service_rig, ops) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port)
    await commit_many(rig.store, 1)
    client = await ops()
    for name in ("ping", "diagnostics", "pause", "resume", "no_such"):
        await request(client, name)
    text = json.dumps(remote_audit(rig.store))
    for personal in (SUBJECT.last_name, SUBJECT.first_name, SUBJECT.date_of_birth, "B0"):
        assert personal not in text
    for entry in remote_audit(rig.store):
        assert set(entry["detail"]) <= {"command", "outcome", "reason", "args", "signed",
                                        "nonce"}


def test_gate_is_pure_and_canonical() -> None:
    key = Ed25519PrivateKey.generate()
    now = [1_700_000_000.0]
    gate = CommandGate(CommandSettings(), CentralKeys([key.public_key()]), now=lambda: now[0])
    body = sign({"v": 1, "command": "ping", "args": {}, "issued_at": now[0],
                 "nonce": "ab" * 8}, key)
    # key order and spacing do not matter: the signature covers the canonical form
    shuffled = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    assert gate.admit(shuffled).name == "ping"
    assert canonical(body) == canonical({k: body[k] for k in sorted(body)})
    with pytest.raises(CommandRefused, match="replayed"):
        gate.admit(shuffled)
    bare = {"v": 1, "command": "pause", "args": {}, "issued_at": now[0], "nonce": "cd" * 8}
    with pytest.raises(CommandRefused, match="no central key is configured"):
        CommandGate(CommandSettings(), None, now=lambda: now[0]).admit(json.dumps(bare).encode())
    bench = CommandGate(CommandSettings(), None, allow_unsigned=True, now=lambda: now[0])
    assert bench.admit(json.dumps(bare).encode()).name == "pause"
    with pytest.raises(CommandRefused, match="replayed"):
        bench.admit(json.dumps(bare).encode())  # unsigned or not, a nonce is used once
    for missing, words in (("issued_at", "needs issued_at"), ("nonce", "needs a nonce")):
        partial = {k: v for k, v in bare.items() if k != missing}
        with pytest.raises(CommandRefused, match=words):
            bench.admit(json.dumps(partial).encode())
    stale = {**bare, "issued_at": now[0] - 3600, "nonce": "ef" * 8}
    with pytest.raises(CommandRefused, match="away from this station's clock"):
        bench.admit(json.dumps(stale).encode())  # queued by the broker an hour ago
    signed_no_time = sign({"v": 1, "command": "ping", "args": {}, "nonce": "01" * 8}, key)
    with pytest.raises(CommandRefused, match="needs issued_at"):
        gate.admit(json.dumps(signed_no_time).encode())
    for payload in (b"[" * 5000, b"\xff", b"x" * 9000, b"7", b'{"command": "PING"}'):
        with pytest.raises(CommandRefused):
            gate.admit(payload)


async def test_no_central_key_means_no_command_and_no_delivery(mosquitto, service_rig, ops,
                                                               loop_errors) -> None:
    """A station not given central's key obeys nothing and marks nothing delivered."""
    rig = await service_rig(mosquitto.host, mosquitto.port, central_keys=())
    for client in (await ops(None), await ops()):  # unsigned, and signed by a key it lacks
        answer = await request(client, "pause")
        assert not answer["ok"] and "no central key is configured" in answer["error"]
    assert not rig.service.uploader.paused
    txids, _ = await commit_many(rig.store, 1)
    rig.service.wake()
    await until(lambda: rig.service.acks_refused >= 1, what="central's answer being refused")
    assert rig.store.outbox_state(txids[0]) in ("queued", "sending")
    assert any("no central key configured" in p for p in rig.service.problems())


async def test_a_test_bench_may_obey_unsigned_commands(mosquitto, service_rig, ops,
                                                       loop_errors) -> None:
    rig = await service_rig(mosquitto.host, mosquitto.port, signed=False)
    answer = await request(await ops(None), "pause")
    assert answer["ok"] and rig.service.uploader.paused
    [entry] = remote_audit(rig.store)
    assert entry["detail"]["signed"] is False
