"""Topic filter rules (MQTT 5.0 section 4.7) and the session's message bookkeeping."""

from __future__ import annotations

import pytest

from appliance.devbroker.packets import PropertyId
from appliance.devbroker.session import Delivery, Message, Session
from appliance.devbroker.topics import is_valid_topic_filter, is_valid_topic_name, topic_matches


@pytest.mark.parametrize(("topic_filter", "name", "expected"), [
    ("a/b", "a/b", True),
    ("a/b", "a/b/c", False),
    ("a/+", "a/b", True),
    ("a/+", "a/b/c", False),
    ("a/+/c", "a//c", True),  # empty level is a level
    ("a/#", "a", True),  # "#" also matches the parent level
    ("a/#", "a/b/c", True),
    ("#", "a/b", True),
    ("+", "/a", False),
    ("+/+", "/a", True),
    ("#", "$SYS/broker", False),  # 4.7.2: leading wildcards skip $-topics
    ("+/broker", "$SYS/broker", False),
    ("$SYS/#", "$SYS/broker", True),
    ("booking/+/ack", "booking/st-1/ack", True),
])
def test_topic_matches(topic_filter, name, expected):
    assert topic_matches(topic_filter, name) is expected


@pytest.mark.parametrize(("topic_filter", "valid"), [
    ("a/b", True), ("#", True), ("a/#", True), ("+/+", True), ("", False),
    ("a/#/b", False), ("a#", False), ("a/b#", False), ("a+", False), ("a/+b", False),
])
def test_topic_filter_validity(topic_filter, valid):
    assert is_valid_topic_filter(topic_filter) is valid


def test_topic_names_may_not_carry_wildcards():
    assert is_valid_topic_name("a/b")
    assert not is_valid_topic_name("a/+")
    assert not is_valid_topic_name("a/#")
    assert not is_valid_topic_name("")


def _message(expiry: int | None) -> Message:
    props = ((PropertyId.USER_PROPERTY, ("k", "v")),)
    if expiry is not None:
        props += ((PropertyId.MESSAGE_EXPIRY_INTERVAL, expiry),)
    return Message.received("t", b"x", 1, False, props + ((PropertyId.TOPIC_ALIAS, 3),), 100.0)


def test_message_expiry_counts_down_and_then_the_message_is_gone():
    msg = _message(expiry=10)
    assert msg.properties_at(100.0) == ((PropertyId.USER_PROPERTY, ("k", "v")),
                                        (PropertyId.MESSAGE_EXPIRY_INTERVAL, 10))
    assert dict(msg.properties_at(106.5))[PropertyId.MESSAGE_EXPIRY_INTERVAL] == 4
    assert msg.properties_at(110.0) is None


def test_message_without_expiry_keeps_its_properties_but_not_the_topic_alias():
    assert _message(expiry=None).properties_at(1e9) == ((PropertyId.USER_PROPERTY, ("k", "v")),)


def test_offline_session_queues_qos1_only_and_stops_at_its_bound():
    session = Session("s", max_queued=2)
    msg = _message(expiry=None)
    assert not session.enqueue(Delivery(msg, 0, False))  # QoS 0 is not kept for absent clients
    assert session.enqueue(Delivery(msg, 1, False))
    assert session.enqueue(Delivery(msg, 1, False))
    assert not session.enqueue(Delivery(msg, 1, False))
    assert len(session.pending) == 2 and session.dropped == 1
