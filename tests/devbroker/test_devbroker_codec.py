"""The sans-IO MQTT 5 codec: round trips, framing across arbitrary splits, and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties as PahoProperties

from appliance.devbroker.codec import (
    MalformedPacket,
    PacketDecoder,
    PacketError,
    PacketTooLarge,
    ProtocolViolation,
    UnsupportedProtocolVersion,
    encode,
    encode_properties,
    encode_varint,
)
from appliance.devbroker.packets import (
    Connack,
    Connect,
    Disconnect,
    Pingreq,
    Pingresp,
    PropertyId,
    Puback,
    Publish,
    ReasonCode,
    Suback,
    Subscribe,
    SubscriptionRequest,
    Unsuback,
    Unsubscribe,
    Will,
)

P = PropertyId


def decode_one(data: bytes):
    packets = PacketDecoder().feed(data)
    assert len(packets) == 1
    return packets[0]


@pytest.mark.parametrize(("value", "wire"), [
    (0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
    (16_384, b"\x80\x80\x01"), (2_097_151, b"\xff\xff\x7f"), (2_097_152, b"\x80\x80\x80\x01"),
    (268_435_455, b"\xff\xff\xff\x7f"),
])
def test_variable_byte_integer_matches_the_standards_table(value, wire):
    assert encode_varint(value) == wire  # 1.5.5, table 1-1


def test_variable_byte_integer_beyond_four_bytes_is_refused():
    with pytest.raises(ValueError):
        encode_varint(268_435_456)


PUBLISH_PROPS = (
    (P.PAYLOAD_FORMAT_INDICATOR, 1), (P.MESSAGE_EXPIRY_INTERVAL, 3600),
    (P.CONTENT_TYPE, "application/json"), (P.RESPONSE_TOPIC, "central/reply/1"),
    (P.CORRELATION_DATA, b"\x00\xff"), (P.USER_PROPERTY, ("k", "1")),
    (P.USER_PROPERTY, ("k", "2")),
)

EXAMPLES = [
    Connect("station-1", clean_start=False, keep_alive=30,
            properties=((P.SESSION_EXPIRY_INTERVAL, 0xFFFFFFFF), (P.RECEIVE_MAXIMUM, 20)),
            will=Will("station/1/status", b"offline", 1, True, ((P.WILL_DELAY_INTERVAL, 5),)),
            username="u", password=b"\x00pw"),
    Connect(""),
    Connack(True, ReasonCode.SUCCESS, ((P.MAXIMUM_QOS, 1), (P.TOPIC_ALIAS_MAXIMUM, 0))),
    Publish("a/b", b"payload", 1, True, True, 7, PUBLISH_PROPS),
    Publish("a/b", b"", 0),
    Puback(65535, ReasonCode.NO_MATCHING_SUBSCRIBERS),
    Subscribe(3, (SubscriptionRequest("a/+", 1, True, True, 2), SubscriptionRequest("#"))),
    Suback(3, (1, 0, ReasonCode.TOPIC_FILTER_INVALID)),
    Unsubscribe(4, ("a/+", "#")),
    Unsuback(4, (0, ReasonCode.NO_SUBSCRIPTION_EXISTED)),
    Pingreq(), Pingresp(),
    Disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE, ((P.SESSION_EXPIRY_INTERVAL, 0),)),
]


@pytest.mark.parametrize("packet", EXAMPLES, ids=lambda p: type(p).__name__)
def test_every_packet_survives_a_round_trip(packet):
    assert decode_one(encode(packet)) == packet


def test_packets_split_at_every_byte_boundary_decode_the_same():
    stream = b"".join(encode(p) for p in EXAMPLES)
    decoder = PacketDecoder()
    packets = []
    for i in range(len(stream)):
        packets += decoder.feed(stream[i:i + 1])
    assert packets == EXAMPLES


def test_properties_encode_like_paho():
    paho = PahoProperties(PacketTypes.PUBLISH)
    paho.PayloadFormatIndicator = 1
    paho.MessageExpiryInterval = 3600
    paho.ContentType = "application/json"
    paho.ResponseTopic = "central/reply/1"
    paho.CorrelationData = b"\x00\xff"
    paho.UserProperty = [("k", "1"), ("k", "2")]
    assert encode_properties(PUBLISH_PROPS) == paho.pack()


def test_short_forms_of_puback_and_disconnect_mean_success():
    assert decode_one(b"\x40\x02\x00\x05") == Puback(5)  # 3.4.2.1: reason omitted
    assert decode_one(b"\xe0\x00") == Disconnect()  # 3.14.2.1


@pytest.mark.parametrize(("wire", "error"), [
    (b"\x36\x04\x00\x01ab", MalformedPacket),  # PUBLISH with QoS 3
    (b"\x32\x05\x00\x01a\x00\x00", MalformedPacket),  # QoS 1 with packet identifier 0
    (b"\x30\x04\x00\x02\xc3\x28", MalformedPacket),  # topic not UTF-8
    (b"\x30\x04\x00\x01\x00\x00", MalformedPacket),  # topic holds U+0000
    (b"\x80\x06\x00\x01\x00\x00\x01#", MalformedPacket),  # SUBSCRIBE with flags 0
    (b"\x82\x03\x00\x01\x00", ProtocolViolation),  # SUBSCRIBE with no filter
    (b"\x82\x06\x00\x01\x00\x00\x01#"[:5] + b"\x00\x01#\xc0", MalformedPacket),  # reserved option
    (b"\x30\x07\x00\x01a\x02\x7f\x00\x00", MalformedPacket),  # unknown property 0x7f
    (b"\x30\x08\x00\x01a\x04\x01\x01\x01\x00", ProtocolViolation),  # property twice
    (b"\x30\x06\x00\x01a\x09\x01\x01", MalformedPacket),  # property length past the end
    (b"\x50\x02\x00\x01", ProtocolViolation),  # PUBREC: no QoS 2 here
    (b"\xf0\x00", ProtocolViolation),  # AUTH
    (b"\x00\x00", MalformedPacket),  # reserved type 0
    (b"\xc0\x01\x00", MalformedPacket),  # PINGREQ with a body
    (b"\x10\x0c\x00\x04MQTT\x05\x03\x00\x3c\x00\x00\x00", MalformedPacket),  # reserved flag
    (b"\x10\x0c\x00\x04MQTT\x05\x10\x00\x3c\x00\x00\x00", MalformedPacket),  # will QoS w/o will
])
def test_broken_packets_are_refused_with_the_right_error(wire, error):
    with pytest.raises(error):
        PacketDecoder().feed(wire)


def test_other_protocol_levels_are_named_in_the_error():
    with pytest.raises(UnsupportedProtocolVersion) as caught:
        PacketDecoder().feed(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
    assert caught.value.level == 4
    assert caught.value.reason_code == ReasonCode.UNSUPPORTED_PROTOCOL_VERSION


def test_oversized_packet_is_refused_from_its_header_alone():
    decoder = PacketDecoder(max_packet_size=1024)
    assert decoder.feed(encode(Publish("t", b"x" * 1000))) != []
    with pytest.raises(PacketTooLarge):
        decoder.feed(b"\x30\x80\x08")  # remaining length 1024: header pushes it over


mqtt_text = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
topics = st.text(mqtt_text, min_size=1, max_size=30)
properties = st.lists(st.one_of(
    st.tuples(st.just(P.PAYLOAD_FORMAT_INDICATOR), st.integers(0, 1)),
    st.tuples(st.just(P.CORRELATION_DATA), st.binary(max_size=40)),
    st.tuples(st.just(P.USER_PROPERTY),
              st.tuples(st.text(mqtt_text, max_size=8), st.text(mqtt_text, max_size=8))),
), max_size=5).map(lambda props: tuple(
    (k, v) for i, (k, v) in enumerate(props)
    if k == P.USER_PROPERTY or all(k != k2 for k2, _ in props[:i])))


@settings(max_examples=150, deadline=None)
@given(topic=topics, payload=st.binary(max_size=300), qos=st.integers(0, 1),
       retain=st.booleans(), packet_id=st.integers(1, 65535), props=properties)
def test_any_publish_round_trips(topic, payload, qos, retain, packet_id, props):
    packet = Publish(topic, payload, qos, retain, False, packet_id if qos else 0, props)
    assert decode_one(encode(packet)) == packet


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_arbitrary_bytes_give_packets_or_a_packet_error_never_a_crash(garbage):
    try:
        PacketDecoder(max_packet_size=1 << 20).feed(garbage)
    except PacketError:
        pass


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, 10_000), byte=st.integers(0, 255),
       packet=st.sampled_from(EXAMPLES))
def test_corrupted_valid_packets_give_packets_or_a_packet_error(index, byte, packet):
    wire = bytearray(encode(packet))
    wire[index % len(wire)] = byte
    try:
        PacketDecoder().feed(bytes(wire))
    except PacketError:
        pass
