"""Identity on the broker: two stations with one id step aside in turn and say why.

Two stations configured with the same id used to knock each other off the broker about once a
second, each log saying only "Unspecified error". Here the twin is a second SyncService with the
same station id on a real Mosquitto. Debian's Mosquitto closes the socket without the MQTT 5
reason "session taken over", so the station that was knocked off recognises the twin by its
birth message (another process's instance) and steps aside.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tests.conftest import until


async def test_two_stations_with_one_id_stop_fighting_and_say_why(mosquitto, service_rig,
                                                                   caplog,
                                                                   loop_errors) -> None:
    caplog.set_level(logging.WARNING, logger="appliance.sync.link")
    first = await service_rig(mosquitto.host, mosquitto.port, receiver=False)  # backoff 60 s
    twin = await service_rig(mosquitto.host, mosquitto.port, receiver=False, connect=False,
                             database="twin")
    links = (first.service.link, twin.service.link)
    await until(lambda: sum(link.counters.taken_over for link in links) >= 1,
                what="one station recognising the other")
    await until(lambda: any(link.connected for link in links), what="one station holding the id")
    # no ping-pong: for as long as we watch, the connection stays with the station that holds it
    connects = [link.counters.connects for link in links]
    watch_until = time.monotonic() + 5.0
    while time.monotonic() < watch_until:
        assert [link.counters.connects for link in links] == connects
        await asyncio.sleep(0.1)
    assert sum(link.connected for link in links) == 1
    aside = first if first.service.link.counters.taken_over else twin
    said = [r.getMessage() for r in caplog.records if "session taken over" in r.getMessage()]
    assert said and "'station-st-1'" in said[0] and "same station id" in said[0]
    health = await aside.service.publish_health()
    assert health.session_taken_over >= 1
    assert any(a.startswith("session taken over") for a in health.alerts)
    assert aside.service.diagnostics()["link"]["session_taken_over"] >= 1
    assert any(e.get("kind") == "identity" for e in aside.events if e["type"] == "alert")


async def test_a_lone_station_is_not_fooled_by_an_old_birth(mosquitto, service_rig,
                                                            capture_factory,
                                                            loop_errors) -> None:
    """A retained birth left behind is another instance too, but nobody dropped this station."""
    cap = capture_factory(mosquitto.host, mosquitto.port, "bst-telemetry/st-1/status")
    cap.client.publish("bst-telemetry/st-1/status",
                       b'{"state": "online", "instance": "0123456789abcdef"}',
                       qos=1, retain=True).wait_for_publish(10)
    rig = await service_rig(mosquitto.host, mosquitto.port, receiver=False)
    link = rig.service.link
    await until(lambda: link.counters.received >= 1, what="the old birth reaching the station")
    await until(lambda: len(cap.on("/status")) >= 2, what="the station's own birth")
    assert link.connected and link.counters.taken_over == 0 and link.counters.connects == 1


class NamingBroker:
    """Speaks just enough MQTT 5 to accept a CONNECT, then sends DISCONNECT "session taken
    over" (0x8E) as brokers newer than Debian's Mosquitto 2.0.11 do; counts the connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.read(1)  # CONNECT's first byte; the rest does not matter here
            writer.write(bytes([0x20, 3, 0, 0, 0]))  # CONNACK: no session, success, no props
            await writer.drain()
            await asyncio.sleep(0.3)
            writer.write(bytes([0xE0, 2, 0x8E, 0]))  # DISCONNECT: session taken over
            await writer.drain()
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_a_broker_that_names_the_takeover_is_believed(service_rig, loop_errors) -> None:
    broker = NamingBroker()
    port = await broker.start()
    try:
        rig = await service_rig("127.0.0.1", port, receiver=False, connect=False)
        link = rig.service.link
        await until(lambda: link.counters.taken_over == 1, what="the named takeover")
        watch_until = time.monotonic() + 3.0
        while time.monotonic() < watch_until:  # it does not come straight back
            assert broker.connections == 1
            await asyncio.sleep(0.1)
        assert "the broker says another client connected" in link.takeover_problem
    finally:
        await broker.close()
