"""The MQTT 5.0 packets the embedded broker exchanges, as plain values.

The vocabulary shared by the codec (bytes <-> packets) and the broker: control packet types,
reason codes and property identifiers named as in the OASIS MQTT Version 5.0 standard
(7 March 2019), whose section numbers the comments cite, and one frozen dataclass per packet.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

MAX_REMAINING_LENGTH = 268_435_455  # 1.5.5: four bytes of variable byte integer


class PacketType(IntEnum):
    """MQTT control packet types (2.1.2, table 2-1)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class ReasonCode(IntEnum):
    """The reason codes this broker sends or reacts to (2.4, table 2-6)."""

    SUCCESS = 0x00
    GRANTED_QOS_1 = 0x01
    DISCONNECT_WITH_WILL_MESSAGE = 0x04
    NO_MATCHING_SUBSCRIBERS = 0x10
    NO_SUBSCRIPTION_EXISTED = 0x11
    UNSPECIFIED_ERROR = 0x80
    MALFORMED_PACKET = 0x81
    PROTOCOL_ERROR = 0x82
    IMPLEMENTATION_SPECIFIC_ERROR = 0x83
    UNSUPPORTED_PROTOCOL_VERSION = 0x84
    CLIENT_IDENTIFIER_NOT_VALID = 0x85
    BAD_AUTHENTICATION_METHOD = 0x8C
    SERVER_SHUTTING_DOWN = 0x8B
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_NAME_INVALID = 0x90
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    QUOTA_EXCEEDED = 0x97
    QOS_NOT_SUPPORTED = 0x9B
    SHARED_SUBSCRIPTIONS_NOT_SUPPORTED = 0x9E
    SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED = 0xA1


class PropertyId(IntEnum):
    """Property identifiers (2.2.2.2, table 2-4)."""

    PAYLOAD_FORMAT_INDICATOR = 1
    MESSAGE_EXPIRY_INTERVAL = 2
    CONTENT_TYPE = 3
    RESPONSE_TOPIC = 8
    CORRELATION_DATA = 9
    SUBSCRIPTION_IDENTIFIER = 11
    SESSION_EXPIRY_INTERVAL = 17
    ASSIGNED_CLIENT_IDENTIFIER = 18
    SERVER_KEEP_ALIVE = 19
    AUTHENTICATION_METHOD = 21
    AUTHENTICATION_DATA = 22
    REQUEST_PROBLEM_INFORMATION = 23
    WILL_DELAY_INTERVAL = 24
    REQUEST_RESPONSE_INFORMATION = 25
    RESPONSE_INFORMATION = 26
    SERVER_REFERENCE = 28
    REASON_STRING = 31
    RECEIVE_MAXIMUM = 33
    TOPIC_ALIAS_MAXIMUM = 34
    TOPIC_ALIAS = 35
    MAXIMUM_QOS = 36
    RETAIN_AVAILABLE = 37
    USER_PROPERTY = 38
    MAXIMUM_PACKET_SIZE = 39
    WILDCARD_SUBSCRIPTION_AVAILABLE = 40
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 41
    SHARED_SUBSCRIPTION_AVAILABLE = 42


PropertyValue = int | str | bytes | tuple[str, str]
Properties = tuple[tuple[PropertyId, PropertyValue], ...]
"""Properties in wire order; user properties may repeat and their order is kept (3.3.2.3.7)."""

def get_property(properties: Properties, pid: PropertyId,
                 default: PropertyValue | None = None) -> PropertyValue | None:
    """The first value of ``pid`` in ``properties``, or ``default``."""
    for key, value in properties:
        if key == pid:
            return value
    return default


@dataclass(frozen=True)
class Will:
    """The will message carried by a CONNECT (3.1.3.2)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    properties: Properties = ()


@dataclass(frozen=True)
class Connect:
    """CONNECT (3.1)."""

    client_id: str
    clean_start: bool = True
    keep_alive: int = 0
    properties: Properties = ()
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None


@dataclass(frozen=True)
class Connack:
    """CONNACK (3.2)."""

    session_present: bool
    reason_code: int
    properties: Properties = ()


@dataclass(frozen=True)
class Publish:
    """PUBLISH (3.3); ``packet_id`` is 0 for QoS 0."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int = 0
    properties: Properties = ()


@dataclass(frozen=True)
class Puback:
    """PUBACK (3.4)."""

    packet_id: int
    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = ()


@dataclass(frozen=True)
class SubscriptionRequest:
    """One topic filter and its subscription options (3.8.3.1)."""

    topic_filter: str
    qos: int = 0
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass(frozen=True)
class Subscribe:
    """SUBSCRIBE (3.8)."""

    packet_id: int
    requests: tuple[SubscriptionRequest, ...]
    properties: Properties = ()


@dataclass(frozen=True)
class Suback:
    """SUBACK (3.9)."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = ()


@dataclass(frozen=True)
class Unsubscribe:
    """UNSUBSCRIBE (3.10)."""

    packet_id: int
    topic_filters: tuple[str, ...]
    properties: Properties = ()


@dataclass(frozen=True)
class Unsuback:
    """UNSUBACK (3.11)."""

    packet_id: int
    reason_codes: tuple[int, ...]
    properties: Properties = ()


@dataclass(frozen=True)
class Pingreq:
    """PINGREQ (3.12)."""


@dataclass(frozen=True)
class Pingresp:
    """PINGRESP (3.13)."""


@dataclass(frozen=True)
class Disconnect:
    """DISCONNECT (3.14)."""

    reason_code: int = ReasonCode.SUCCESS
    properties: Properties = ()


Packet = (Connect | Connack | Publish | Puback | Subscribe | Suback | Unsubscribe | Unsuback
          | Pingreq | Pingresp | Disconnect)
