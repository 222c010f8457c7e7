"""The real paho-mqtt 2.x client (MQTT 5) against the embedded broker and a real Mosquitto.

Each test runs twice: against Mosquitto it proves the test asserts real MQTT 5 behaviour,
against the embedded broker it proves the broker behaves the same way.
"""

from __future__ import annotations

import os
import socket

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

WAIT = 5.0


def test_qos0_and_qos1_messages_arrive_in_order(broker_port, paho, topic_prefix):
    sub = paho(broker_port)
    sub.connect()
    assert sub.subscribe(f"{topic_prefix}/t", qos=1)[0].value == 1
    pub = paho(broker_port)
    pub.connect()
    pub.publish(f"{topic_prefix}/t", b"zero", qos=0)
    pub.publish(f"{topic_prefix}/t", b"one", qos=1)
    first, second = sub.expect(), sub.expect()
    assert (first.payload, first.qos) == (b"zero", 0)
    assert (second.payload, second.qos) == (b"one", 1)
    assert not second.retain
    sub.expect_nothing()


def test_wildcards_match_levels_and_leave_dollar_topics_alone(broker_port, paho, topic_prefix):
    sub = paho(broker_port)
    sub.connect()
    sub.subscribe("+/sensor/#")
    dollar = paho(broker_port)
    dollar.connect()
    dollar.subscribe("$station/#")
    pub = paho(broker_port)
    pub.connect()
    for topic in ("a/sensor", "a/sensor/t/1", "a/b/sensor", "$station/sensor/x", "b/sensor/end"):
        pub.publish(topic, b"x")
    received = [sub.expect().topic for _ in range(3)]
    assert received == ["a/sensor", "a/sensor/t/1", "b/sensor/end"]
    assert dollar.expect().topic == "$station/sensor/x"  # it was published, just not to "+/..."
    sub.expect_nothing()


def test_retained_message_is_delivered_on_subscribe_and_cleared_by_empty_payload(
        broker_port, paho, topic_prefix):
    pub = paho(broker_port)
    pub.connect()
    pub.publish(f"{topic_prefix}/status", b"online", retain=True)
    late = paho(broker_port)
    late.connect()
    late.subscribe(f"{topic_prefix}/+")
    msg = late.expect()
    assert (msg.topic, msg.payload, msg.retain) == (f"{topic_prefix}/status", b"online", True)

    pub.publish(f"{topic_prefix}/status", b"live", retain=True)
    live = late.expect()
    assert (live.payload, live.retain) == (b"live", False)  # live delivery: retain flag cleared

    pub.publish(f"{topic_prefix}/status", b"", retain=True)
    assert late.expect().payload == b""
    pub.publish(f"{topic_prefix}/marker", b"m", retain=True)
    later = paho(broker_port)
    later.connect()
    later.subscribe(f"{topic_prefix}/+")
    assert later.expect().topic == f"{topic_prefix}/marker"
    later.expect_nothing()


def test_will_is_published_on_abnormal_close_but_not_on_normal_disconnect(
        broker_port, paho, topic_prefix):
    watcher = paho(broker_port)
    watcher.connect()
    watcher.subscribe(f"{topic_prefix}/will/#")

    polite = paho(broker_port, "polite-station")
    polite.will(f"{topic_prefix}/will/polite", b"offline")
    polite.connect()
    polite.disconnect()

    crashed = paho(broker_port, "crashed-station")
    crashed.will(f"{topic_prefix}/will/crashed", b"offline")
    crashed.connect()
    crashed.kill()

    will = watcher.expect()
    assert (will.topic, will.payload, will.qos) == (f"{topic_prefix}/will/crashed", b"offline", 1)
    watcher.expect_nothing()


def test_persistent_session_gets_messages_queued_while_offline(broker_port, paho, topic_prefix):
    station = paho(broker_port, "station-17", clean_start=False, session_expiry=300)
    flags, _, _ = station.connect()
    assert not flags.session_present
    station.subscribe(f"{topic_prefix}/ack/#", qos=1)
    station.disconnect()

    central = paho(broker_port)
    central.connect()
    for n in range(3):
        central.publish(f"{topic_prefix}/ack/{n}", f"stored {n}".encode(), qos=1)

    back = paho(broker_port, "station-17", clean_start=False, session_expiry=300)
    flags, _, _ = back.connect()
    assert flags.session_present
    assert [back.expect().payload for _ in range(3)] == [b"stored 0", b"stored 1", b"stored 2"]
    back.disconnect()

    fresh = paho(broker_port, "station-17", clean_start=True)
    flags, _, _ = fresh.connect()
    assert not flags.session_present


def test_request_response_properties_arrive_intact(broker_port, paho, topic_prefix):
    station = paho(broker_port)
    station.connect()
    station.subscribe(f"{topic_prefix}/cmd")
    central = paho(broker_port)
    central.connect()
    central.subscribe(f"{topic_prefix}/reply")

    request = Properties(PacketTypes.PUBLISH)
    request.ResponseTopic = f"{topic_prefix}/reply"
    request.CorrelationData = b"\x00\x01corr\xff"
    request.UserProperty = [("op", "ping"), ("op", "again"), ("ü-key", "välue")]
    request.ContentType = "application/json"
    request.PayloadFormatIndicator = 1
    request.MessageExpiryInterval = 120
    central.publish(f"{topic_prefix}/cmd", b'{"op":"ping"}', properties=request)

    got = station.expect().properties
    assert got.ResponseTopic == f"{topic_prefix}/reply"
    assert got.CorrelationData == b"\x00\x01corr\xff"
    assert got.UserProperty == [("op", "ping"), ("op", "again"), ("ü-key", "välue")]
    assert got.ContentType == "application/json"
    assert got.PayloadFormatIndicator == 1
    assert 0 < got.MessageExpiryInterval <= 120

    response = Properties(PacketTypes.PUBLISH)
    response.CorrelationData = got.CorrelationData
    station.publish(got.ResponseTopic, b'{"ok":true}', properties=response)
    reply = central.expect()
    assert reply.payload == b'{"ok":true}'
    assert reply.properties.CorrelationData == b"\x00\x01corr\xff"


def test_128_kib_chunk_passes_unchanged(broker_port, paho, topic_prefix):
    sub = paho(broker_port)
    sub.connect()
    sub.subscribe(f"{topic_prefix}/chunk")
    pub = paho(broker_port)
    pub.connect()
    chunk = os.urandom(128 * 1024)
    pub.publish(f"{topic_prefix}/chunk", chunk, qos=1)
    assert sub.expect().payload == chunk


GARBAGE = [
    b"\x00\x00",  # reserved packet type 0
    b"\x10\xff\xff\xff\xff\x7f",  # remaining length longer than four bytes
    b"\x10\x0a\x00\x04MQTX\x05\x02\x00\x3c",  # protocol name is not "MQTT"
    b"\x30\x04\x00\x09ab",  # PUBLISH before CONNECT, topic length past the end
    b"\x10\x0d\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00",  # CONNECT reserved flag set
    b"\x82\x06\x00\x01\x00\x00\x01#" * 100,  # SUBSCRIBE before CONNECT, repeated
]


def _read_until_closed(raw: socket.socket) -> None:
    try:
        while raw.recv(1024):  # at most a refusal, then the broker closes the connection
            pass
    except ConnectionResetError:
        pass  # closed with our unread garbage still in its buffer: also closed


def test_malformed_bytes_close_that_connection_and_the_broker_keeps_serving(
        broker_port, paho, topic_prefix):
    for garbage in GARBAGE:
        with socket.create_connection(("127.0.0.1", broker_port), timeout=WAIT) as raw:
            raw.sendall(garbage)
            _read_until_closed(raw)
    sub = paho(broker_port)
    sub.connect()
    sub.subscribe(f"{topic_prefix}/still")
    pub = paho(broker_port)
    pub.connect()
    pub.publish(f"{topic_prefix}/still", b"working")
    assert sub.expect().payload == b"working"
