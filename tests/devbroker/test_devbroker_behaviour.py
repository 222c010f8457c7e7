"""Embedded-broker behaviour that goes beyond the interop suite: refusals, limits, flow control,
session takeover and shutdown. Raw-socket clients speak through the broker's own codec."""

from __future__ import annotations

import asyncio
import socket

import pytest

from appliance.devbroker import DevBrokerError, EmbeddedBroker
from appliance.devbroker.codec import PacketDecoder, encode
from appliance.devbroker.packets import (
    Connack,
    Connect,
    Disconnect,
    PropertyId,
    Puback,
    Publish,
    ReasonCode,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Will,
)

WAIT = 5.0


class RawClient:
    """A blocking MQTT 5 client made of a socket and the codec, for what paho will not send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.decoder = PacketDecoder()
        self.backlog: list = []

    def send(self, packet) -> None:
        self.sock.sendall(encode(packet))

    def receive(self):
        """The next packet, or None when the broker closed the connection."""
        while not self.backlog:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return None
            self.backlog += self.decoder.feed(data)
        return self.backlog.pop(0)

    def connect(self, connect: Connect) -> Connack:
        self.send(connect)
        connack = self.receive()
        assert isinstance(connack, Connack)
        return connack

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def raw(embedded_port):
    clients: list[RawClient] = []

    def make(port: int = embedded_port) -> RawClient:
        clients.append(RawClient(port))
        return clients[-1]

    yield make
    for c in clients:
        c.close()


def test_connack_advertises_the_limits_the_station_relies_on(embedded_port, paho):
    client = paho(embedded_port)
    _, reason, props = client.connect()
    assert reason == "Success"
    assert props.MaximumQoS == 1
    assert props.MaximumPacketSize == 1024 * 1024
    assert props.TopicAliasMaximum == 0
    assert props.SubscriptionIdentifierAvailable == 0
    assert props.AssignedClientIdentifier  # the client sent an empty client id


def test_mqtt_311_connect_is_refused_with_unacceptable_protocol_version(raw):
    client = raw()
    client.sock.sendall(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # 3.1.1 CONNECT
    assert client.sock.recv(16) == b"\x20\x02\x00\x01"  # 3.1.1 CONNACK, return code 1
    assert client.receive() is None


def test_unknown_protocol_level_gets_connack_0x84(raw):
    client = raw()
    client.sock.sendall(b"\x10\x0c\x00\x04MQTT\x06\x02\x00\x3c\x00\x00")
    assert client.receive() == Connack(False, ReasonCode.UNSUPPORTED_PROTOCOL_VERSION)
    assert client.receive() is None


def test_qos2_subscription_is_granted_qos1(embedded_port, paho, topic_prefix):
    client = paho(embedded_port)
    client.connect()
    assert client.subscribe(f"{topic_prefix}/q", qos=2) == ["Granted QoS 1"]
    client.publish(f"{topic_prefix}/q", b"x", qos=1)
    assert client.expect().qos == 1


def test_invalid_and_shared_filters_are_refused_in_suback(raw):
    client = raw()
    client.connect(Connect("filters"))
    client.send(Subscribe(1, (SubscriptionRequest("a/#/b"), SubscriptionRequest("a+/b"),
                              SubscriptionRequest("$share/g/a"), SubscriptionRequest("ok/+"))))
    assert client.receive() == Suback(1, (ReasonCode.TOPIC_FILTER_INVALID,
                                          ReasonCode.TOPIC_FILTER_INVALID,
                                          ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED, 0))


def test_receive_maximum_zero_is_refused_as_a_protocol_error(raw):
    client = raw()
    connack = client.connect(Connect("zero", properties=((PropertyId.RECEIVE_MAXIMUM, 0),)))
    assert connack.reason_code == ReasonCode.PROTOCOL_ERROR
    assert client.receive() is None


def test_malformed_packet_after_connect_gets_disconnect_0x81(raw):
    client = raw()
    client.connect(Connect("bad-publisher"))
    client.sock.sendall(b"\x36\x04\x00\x01ab")  # PUBLISH with QoS 3
    assert client.receive() == Disconnect(ReasonCode.MALFORMED_PACKET)
    assert client.receive() is None


def test_packet_over_the_maximum_size_gets_disconnect_0x95(raw):
    client = raw()
    client.connect(Connect("big-publisher"))
    client.sock.sendall(b"\x30\x80\x80\x80\x01")  # header of a 2 MiB PUBLISH; body never sent
    assert client.receive() == Disconnect(ReasonCode.PACKET_TOO_LARGE)
    assert client.receive() is None


def test_silent_client_is_dropped_after_keep_alive_and_its_will_goes_out(raw, paho,
                                                                         embedded_port):
    watcher = paho(embedded_port)
    watcher.connect()
    watcher.subscribe("station/+/status")
    silent = raw()
    silent.connect(Connect("silent", keep_alive=1,
                           will=Will("station/silent/status", b"offline", qos=1)))
    assert silent.receive() == Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT)
    assert watcher.expect().payload == b"offline"


def test_receive_maximum_limits_inflight_and_unacked_messages_are_resent(raw, paho,
                                                                         embedded_port):
    station = raw()
    session = Connect("slow-station", clean_start=False, properties=(
        (PropertyId.SESSION_EXPIRY_INTERVAL, 300), (PropertyId.RECEIVE_MAXIMUM, 2)))
    station.connect(session)
    station.send(Subscribe(1, (SubscriptionRequest("backlog/#", qos=1),)))
    assert isinstance(station.receive(), Suback)
    central = paho(embedded_port)
    central.connect()
    for n in range(4):
        central.publish(f"backlog/{n}", str(n).encode(), qos=1)

    first, second = station.receive(), station.receive()
    assert [first.payload, second.payload] == [b"0", b"1"]
    station.sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # no third message while two are unacknowledged
        station.sock.recv(1)
    station.close()  # vanish without acknowledging

    back = raw()
    assert back.connect(session).session_present
    resent = [back.receive(), back.receive()]
    assert [(p.payload, p.dup) for p in resent] == [(b"0", True), (b"1", True)]
    back.send(Puback(resent[0].packet_id))
    third = back.receive()
    assert isinstance(third, Publish) and third.payload == b"2" and not third.dup


def test_offline_queue_is_bounded_and_keeps_the_oldest(start_embedded, paho, topic_prefix):
    port = start_embedded(max_queued_messages=5).port
    station = paho(port, "bounded", clean_start=False, session_expiry=300)
    station.connect()
    station.subscribe(f"{topic_prefix}/#")
    station.disconnect()
    central = paho(port)
    central.connect()
    for n in range(8):
        central.publish(f"{topic_prefix}/{n}", str(n).encode(), qos=1)
    back = paho(port, "bounded", clean_start=False, session_expiry=300)
    back.connect()
    assert [back.expect().payload for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
    back.expect_nothing()


def test_second_connection_with_same_client_id_takes_the_session_over(embedded_port, paho):
    first = paho(embedded_port, "station-9")
    first.connect()
    second = paho(embedded_port, "station-9")
    second.connect()
    assert first.disconnects.get(timeout=WAIT) == "Session taken over"


def test_stop_tells_clients_the_server_is_shutting_down(start_embedded, paho):
    runner = start_embedded()
    client = paho(runner.port)
    client.connect()
    runner.call(runner.broker.stop())
    assert client.disconnects.get(timeout=WAIT) == "Server shutting down"
    with pytest.raises(DevBrokerError):
        _ = runner.broker.port


async def test_async_context_manager_serves_a_client_on_the_callers_loop():
    async with EmbeddedBroker() as broker:
        reader, writer = await asyncio.open_connection("127.0.0.1", broker.port)
        decoder = PacketDecoder()
        writer.write(encode(Connect("async-client")) + encode(
            Subscribe(1, (SubscriptionRequest("loop/#", qos=1),))) + encode(
            Publish("loop/x", b"hi", qos=1, packet_id=2)))
        packets: list = []
        while len(packets) < 4:
            packets += decoder.feed(await asyncio.wait_for(reader.read(4096), WAIT))
        connack, suback, puback, delivered = packets
        assert connack.reason_code == ReasonCode.SUCCESS
        assert suback == Suback(1, (1,))
        assert puback == Puback(2, ReasonCode.SUCCESS)
        assert (delivered.topic, delivered.payload, delivered.qos) == ("loop/x", b"hi", 1)
        writer.close()
    with pytest.raises(DevBrokerError):
        _ = broker.port


async def test_start_on_a_busy_port_raises_devbroker_error():
    async with EmbeddedBroker() as broker:
        with pytest.raises(DevBrokerError):
            await EmbeddedBroker().start(port=broker.port)
