"""The MQTT link in a process that holds many open files."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from appliance.sync.config import MqttSection
from appliance.sync.link import MqttLink
from tests.conftest import until


async def test_the_link_works_with_descriptors_above_1024(mosquitto, low_fds_taken) -> None:
    """A fleet process or a busy station has more than 1024 descriptors open; select() would
    refuse them and the network thread spun, reconnecting, without ever connecting."""
    if shutil.which("mosquitto_sub") is None:
        pytest.skip("mosquitto_sub is not installed (apt-get install mosquitto-clients)")
    received: list[bytes] = []
    cfg = MqttSection(host=mosquitto.host, port=mosquitto.port, reconnect_min_s=0.1,
                      reconnect_max_s=1.0, ack_timeout_s=3.0)
    link = MqttLink(cfg, "station-many-files", subscriptions=["t/in"],
                    on_message=lambda _topic, payload, _props: received.append(payload))
    sub = subprocess.Popen(["mosquitto_sub", "-h", mosquitto.host, "-p", str(mosquitto.port),
                            "-t", "t/out", "-C", "1", "-W", "120"],
                           stdout=subprocess.PIPE, text=True)
    link.start(asyncio.get_running_loop())
    try:
        await until(lambda: link.connected, what="the link connected")
        assert link._wake_r.fileno() >= 1024  # the descriptors select() refuses
        await until(lambda: link.counters.connects >= 1, what="a counted connection")
        # the subscriber may not have subscribed yet: publish until it has the message
        while sub.poll() is None:
            await link.publish("t/out", b"from the station")
            try:
                await asyncio.wait_for(asyncio.to_thread(sub.wait, 1.0), 5.0)
            except (subprocess.TimeoutExpired, TimeoutError):
                pass
        assert sub.stdout is not None and sub.stdout.read().strip() == "from the station"
        while not received:
            await asyncio.to_thread(subprocess.run, [
                "mosquitto_pub", "-h", mosquitto.host, "-p", str(mosquitto.port), "-t", "t/in",
                "-q", "1", "-m", "to the station"], check=True, timeout=60)
            try:
                await until(lambda: bool(received), timeout=2.0)
            except AssertionError:
                pass  # the link's subscription may not be in place yet: send again
        assert received[0] == b"to the station"
        assert link.counters.connects == 1, "the link reconnected: it lost its connection"
    finally:
        sub.kill()
        sub.wait()
        await asyncio.to_thread(link.stop)
