"""`python -m demo --bookings N` (`make demo`): the smoke test anyone can run, with each broker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from demo.broker import mqtt_listening
from tests.conftest import _need_mosquitto

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("broker", ["existing", "mosquitto"])
def test_demo_delivers_every_booking(tmp_path: Path, broker: str) -> None:
    _need_mosquitto()
    if broker == "existing" and not mqtt_listening("127.0.0.1", 1883):
        pytest.skip("no MQTT broker listens on 127.0.0.1:1883 on this machine")
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--bookings", "1", "--web-port", "0",
         "--broker", broker, "--state-dir", str(tmp_path / "state"), "--timeout", "240"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo: OK: the central receiver holds 1 of 1 bookings" in result.stdout
    held = list((tmp_path / "state" / "central" / "transactions").rglob("*.an2"))
    assert len(held) == 1


def test_demo_fails_loudly_when_central_never_answers(tmp_path: Path) -> None:
    """With a broker but no way to finish in time, the demo exits non-zero with the reason."""
    _need_mosquitto()
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--bookings", "1", "--web-port", "0",
         "--broker", "mosquitto", "--state-dir", str(tmp_path / "state"), "--timeout", "0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "demo: FAILED" in result.stdout


def test_broker_probe_tells_mqtt_from_other_listeners(mosquitto) -> None:
    import socket

    assert mqtt_listening(mosquitto.host, mosquitto.port)
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        assert not mqtt_listening("127.0.0.1", plain.getsockname()[1], timeout=0.3)


ALLOWED = (0, 0x10)  # success, or "no matching subscribers"


class Client:
    """A plain MQTT 5 client logged in as ``user``; records what it receives."""

    def __init__(self, port: int, user: str | None, password: str | None,
                 subscribe: tuple[str, ...] = ()) -> None:
        import threading

        import paho.mqtt.client as mqtt

        self.received: list[tuple[str, bytes]] = []
        self.refused: list[str] = []
        self.granted: list[int] = []
        self._ready = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.on_subscribe = self._on_subscribe
        self._subscribe = subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._ready.wait(10)

    def _on_connect(self, client, _u, _f, reason, _p) -> None:
        if reason.is_failure:
            self.refused.append(str(reason))
            self._ready.set()
        elif self._subscribe:
            client.subscribe([(t, 1) for t in self._subscribe])
        else:
            self._ready.set()

    def _on_subscribe(self, _c, _u, _mid, codes, _p) -> None:
        self.granted = [c.value for c in codes]
        self._ready.set()

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; returns the broker's PUBACK reason code."""
        codes: list[int] = []
        self.client.on_publish = lambda _c, _u, _mid, reason, _p: codes.append(reason.value)
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)
        return codes[-1] if codes else -1

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def test_the_demo_broker_keeps_each_station_to_its_own_topics(tmp_path: Path) -> None:
    """The demo's Mosquitto (passwords + docs/mosquitto-acl.conf): who may publish what."""
    import asyncio

    from demo.broker import demo_broker
    from demo.run import CENTRAL_USER, broker_users, prepare_central, prepare_state, station_id_for
    from tests.conftest import until

    _need_mosquitto()
    state = tmp_path / "state"
    state.mkdir()
    creds, _ = prepare_state(state)
    central_id = prepare_central(state)
    users = broker_users(state, creds, central_id)
    station = station_id_for(state)
    users["demo-other"] = "other-password"
    async with demo_broker(prefer="mosquitto", folder=state / "broker", users=users) as broker:
        assert broker.authenticated
        opened = []

        def client(user, password=None, subscribe=()):
            made = Client(broker.port, user, password or users.get(user), subscribe)
            opened.append(made)
            return made

        try:
            victim = await asyncio.to_thread(client, station, None,
                                             (f"bst/{station}/ack", f"bst/{station}/cmd"))
            assert victim.granted == [1, 1]
            other = await asyncio.to_thread(client, "demo-other", None,
                                            (f"bst/{station}/ack", f"bst/{station}/cmd"))
            # Mosquitto 2.0 grants the subscription but delivers nothing the ACL does not allow
            central = await asyncio.to_thread(client, CENTRAL_USER)
            nobody = await asyncio.to_thread(client, None)
            wrong = await asyncio.to_thread(client, station, "not-the-password")
            assert nobody.refused and wrong.refused
            for topic in (f"bst/{station}/ack", f"bst/{station}/cmd"):
                # another station (and the station itself) may not publish central's topics
                assert await asyncio.to_thread(other.publish, topic, b"forged") == 0x87
                assert await asyncio.to_thread(victim.publish, topic, b"forged") == 0x87
                assert await asyncio.to_thread(central.publish, topic, b"central") in ALLOWED
            assert await asyncio.to_thread(other.publish, f"bst/{station}/tx/x/meta", b"x") == 0x87
            assert await asyncio.to_thread(victim.publish, f"bst-telemetry/{station}/status",
                                           b"{}") in ALLOWED
            await until(lambda: len(victim.received) == 2, what="central's two messages")
            assert {p for _t, p in victim.received} == {b"central"}
            assert other.received == []
        finally:
            for made in opened:
                await asyncio.to_thread(made.close)


def test_each_state_folder_gets_its_own_station_id(tmp_path: Path) -> None:
    """Every checkout used to be `demo-demo-state`: two demos on one broker took turns."""
    from demo.run import station_id_for

    one, two = tmp_path / "a" / "demo-state", tmp_path / "b" / "demo-state"
    assert station_id_for(one) != station_id_for(two)
    assert station_id_for(one) == station_id_for(tmp_path / "a" / "." / "demo-state")
    assert re.fullmatch(r"demo-[0-9a-f]{12}", station_id_for(one))
