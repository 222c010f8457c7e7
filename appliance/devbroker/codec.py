"""Sans-IO MQTT 5.0 codec for the embedded demo broker: packets to bytes and back.

The broker needs to read and write the packets an MQTT 5 client exchanges with a QoS 0/1 broker,
and nothing else: no QoS 2 handshake, no AUTH exchange. Everything here is a pure function on
bytes, so the framing rules can be tested without sockets. Section numbers refer to the OASIS
MQTT Version 5.0 standard (7 March 2019).
"""

from __future__ import annotations

from collections.abc import Iterable

from appliance.devbroker.packets import (
    MAX_REMAINING_LENGTH,
    Connack,
    Connect,
    Disconnect,
    Packet,
    PacketType,
    Pingreq,
    Pingresp,
    Properties,
    PropertyId,
    PropertyValue,
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
from appliance.errors import SyncError

# The 3.1.1 CONNACK "unacceptable protocol version" (MQTT 3.1.1 section 3.2.2.3, return code 1):
# the only refusal a 3.1.1 client can parse.
V311_CONNACK_UNACCEPTABLE_PROTOCOL = bytes((0x20, 0x02, 0x00, 0x01))

_BYTE, _TWO, _FOUR, _VBI, _UTF8, _BINARY, _PAIR = range(7)
_P = PropertyId
_PROPERTY_TYPE = {
    **dict.fromkeys((_P.PAYLOAD_FORMAT_INDICATOR, _P.REQUEST_PROBLEM_INFORMATION,
                     _P.REQUEST_RESPONSE_INFORMATION, _P.MAXIMUM_QOS, _P.RETAIN_AVAILABLE,
                     _P.WILDCARD_SUBSCRIPTION_AVAILABLE, _P.SUBSCRIPTION_IDENTIFIER_AVAILABLE,
                     _P.SHARED_SUBSCRIPTION_AVAILABLE), _BYTE),
    **dict.fromkeys((_P.SERVER_KEEP_ALIVE, _P.RECEIVE_MAXIMUM, _P.TOPIC_ALIAS_MAXIMUM,
                     _P.TOPIC_ALIAS), _TWO),
    **dict.fromkeys((_P.MESSAGE_EXPIRY_INTERVAL, _P.SESSION_EXPIRY_INTERVAL,
                     _P.WILL_DELAY_INTERVAL, _P.MAXIMUM_PACKET_SIZE), _FOUR),
    _P.SUBSCRIPTION_IDENTIFIER: _VBI,
    **dict.fromkeys((_P.CONTENT_TYPE, _P.RESPONSE_TOPIC, _P.ASSIGNED_CLIENT_IDENTIFIER,
                     _P.AUTHENTICATION_METHOD, _P.RESPONSE_INFORMATION, _P.SERVER_REFERENCE,
                     _P.REASON_STRING), _UTF8),
    **dict.fromkeys((_P.CORRELATION_DATA, _P.AUTHENTICATION_DATA), _BINARY),
    _P.USER_PROPERTY: _PAIR,
}
_REPEATABLE = frozenset({_P.USER_PROPERTY, _P.SUBSCRIPTION_IDENTIFIER})


class PacketError(SyncError):
    """Bytes on the wire are not an MQTT 5 packet this broker accepts; carries the reason code."""

    reason_code = ReasonCode.MALFORMED_PACKET

    def __init__(self, message: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(message)
        if reason_code is not None:
            self.reason_code = reason_code


class MalformedPacket(PacketError):
    """The bytes break the packet grammar (reason 0x81)."""


class ProtocolViolation(PacketError):
    """The packet parses but breaks a protocol rule (reason 0x82)."""

    reason_code = ReasonCode.PROTOCOL_ERROR


class PacketTooLarge(PacketError):
    """The packet exceeds the maximum packet size the broker advertised (reason 0x95)."""

    reason_code = ReasonCode.PACKET_TOO_LARGE


class UnsupportedProtocolVersion(PacketError):
    """A CONNECT asked for a protocol level other than 5 (reason 0x84)."""

    reason_code = ReasonCode.UNSUPPORTED_PROTOCOL_VERSION

    def __init__(self, level: int) -> None:
        super().__init__(f"protocol level {level} is not supported, only 5 (MQTT 5.0)")
        self.level = level


# --- primitive encoders ---------------------------------------------------------------------

def encode_varint(value: int) -> bytes:
    """Variable byte integer (1.5.5)."""
    if not 0 <= value <= MAX_REMAINING_LENGTH:
        raise ValueError(f"variable byte integer out of range: {value}")
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def _binary(data: bytes) -> bytes:
    return len(data).to_bytes(2, "big") + data


def encode_properties(properties: Properties) -> bytes:
    """A property block: its length as a variable byte integer, then the properties (2.2.2)."""
    body = bytearray()
    for pid, value in properties:
        kind = _PROPERTY_TYPE[pid]
        body += encode_varint(pid)
        if kind == _BYTE:
            body.append(value)
        elif kind in (_TWO, _FOUR):
            body += value.to_bytes(2 if kind == _TWO else 4, "big")
        elif kind == _VBI:
            body += encode_varint(value)
        elif kind == _UTF8:
            body += _utf8(value)
        elif kind == _BINARY:
            body += _binary(value)
        else:
            body += _utf8(value[0]) + _utf8(value[1])
    return encode_varint(len(body)) + bytes(body)


def _frame(first_byte: int, body: bytes) -> bytes:
    return bytes((first_byte,)) + encode_varint(len(body)) + body


def _acks(packet_id: int, codes: Iterable[int], properties: Properties) -> bytes:
    return packet_id.to_bytes(2, "big") + encode_properties(properties) + bytes(codes)


def encode(packet: Packet) -> bytes:
    """The wire bytes of ``packet``."""
    match packet:
        case Publish():
            flags = (packet.dup << 3) | (packet.qos << 1) | packet.retain
            body = _utf8(packet.topic)
            if packet.qos:
                body += packet.packet_id.to_bytes(2, "big")
            body += encode_properties(packet.properties) + packet.payload
            return _frame(0x30 | flags, body)
        case Puback():
            return _frame(0x40, packet.packet_id.to_bytes(2, "big") + bytes((packet.reason_code,))
                          + encode_properties(packet.properties))
        case Connack():
            body = bytes((int(packet.session_present), packet.reason_code))
            return _frame(0x20, body + encode_properties(packet.properties))
        case Suback():
            return _frame(0x90, _acks(packet.packet_id, packet.reason_codes, packet.properties))
        case Unsuback():
            return _frame(0xB0, _acks(packet.packet_id, packet.reason_codes, packet.properties))
        case Pingreq():
            return b"\xc0\x00"
        case Pingresp():
            return b"\xd0\x00"
        case Disconnect():
            return _frame(0xE0, bytes((packet.reason_code,)) + encode_properties(packet.properties))
        case Subscribe():
            body = packet.packet_id.to_bytes(2, "big") + encode_properties(packet.properties)
            for req in packet.requests:
                options = (req.qos | (req.no_local << 2) | (req.retain_as_published << 3)
                           | (req.retain_handling << 4))
                body += _utf8(req.topic_filter) + bytes((options,))
            return _frame(0x82, body)
        case Unsubscribe():
            body = packet.packet_id.to_bytes(2, "big") + encode_properties(packet.properties)
            body += b"".join(_utf8(f) for f in packet.topic_filters)
            return _frame(0xA2, body)
        case Connect():
            return _frame(0x10, _encode_connect_body(packet))
    raise TypeError(f"not an MQTT packet: {type(packet).__name__}")


def _encode_connect_body(packet: Connect) -> bytes:
    will = packet.will
    flags = (packet.clean_start << 1) | ((packet.username is not None) << 7) | (
        (packet.password is not None) << 6)
    if will is not None:
        flags |= 0x04 | (will.qos << 3) | (will.retain << 5)
    body = _utf8("MQTT") + bytes((5, flags)) + packet.keep_alive.to_bytes(2, "big")
    body += encode_properties(packet.properties) + _utf8(packet.client_id)
    if will is not None:
        body += encode_properties(will.properties) + _utf8(will.topic) + _binary(will.payload)
    if packet.username is not None:
        body += _utf8(packet.username)
    if packet.password is not None:
        body += _binary(packet.password)
    return body


# --- decoding -------------------------------------------------------------------------------

class _Cursor:
    """Reads MQTT data types from one packet's body; every overrun is a malformed packet."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.remaining():
            raise MalformedPacket("packet ends inside a field")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def varint(self) -> int:
        value = 0
        for shift in range(0, 28, 7):
            digit = self.byte()
            value |= (digit & 0x7F) << shift
            if not digit & 0x80:
                return value
        raise MalformedPacket("variable byte integer longer than four bytes")

    def binary(self) -> bytes:
        return self.take(self.uint(2))

    def utf8(self) -> str:
        try:
            text = self.binary().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedPacket("string is not well-formed UTF-8") from exc
        if "\x00" in text:
            raise MalformedPacket("string contains U+0000")  # 1.5.4
        return text

    def properties(self) -> Properties:
        end = self.varint()
        if end > self.remaining():
            raise MalformedPacket("property length runs past the packet")
        end += self.pos
        found: list[tuple[PropertyId, PropertyValue]] = []
        while self.pos < end:
            try:
                pid = PropertyId(self.varint())
            except ValueError as exc:
                raise MalformedPacket("unknown property identifier") from exc
            if pid not in _REPEATABLE and any(k == pid for k, _ in found):
                raise ProtocolViolation(f"property {pid.name} given twice")
            found.append((pid, self._property_value(_PROPERTY_TYPE[pid])))
        if self.pos != end:
            raise MalformedPacket("property runs past the property length")
        return tuple(found)

    def _property_value(self, kind: int) -> PropertyValue:
        if kind == _BYTE:
            return self.byte()
        if kind in (_TWO, _FOUR):
            return self.uint(2 if kind == _TWO else 4)
        if kind == _VBI:
            return self.varint()
        if kind == _UTF8:
            return self.utf8()
        if kind == _BINARY:
            return self.binary()
        return (self.utf8(), self.utf8())

    def end(self) -> None:
        if self.remaining():
            raise MalformedPacket("bytes left over at the end of the packet")


def _packet_id(cur: _Cursor) -> int:
    packet_id = cur.uint(2)
    if packet_id == 0:
        raise MalformedPacket("packet identifier 0")  # 2.2.1
    return packet_id


def _reason_and_properties(cur: _Cursor) -> tuple[int, Properties]:
    # PUBACK and DISCONNECT may stop before the reason code or before the properties.
    reason = cur.byte() if cur.remaining() else ReasonCode.SUCCESS
    properties = cur.properties() if cur.remaining() else ()
    return reason, properties


def _decode_connect(cur: _Cursor) -> Connect:
    if cur.utf8() != "MQTT":
        raise MalformedPacket("protocol name is not MQTT")
    level = cur.byte()
    if level != 5:
        raise UnsupportedProtocolVersion(level)
    flags = cur.byte()
    will_qos = (flags >> 3) & 0x03
    if flags & 0x01 or will_qos == 3 or (not flags & 0x04 and flags & 0x38):
        raise MalformedPacket("invalid CONNECT flags")  # 3.1.2.3
    keep_alive = cur.uint(2)
    properties = cur.properties()
    client_id = cur.utf8()
    will = None
    if flags & 0x04:
        will_properties = cur.properties()
        will = Will(cur.utf8(), cur.binary(), will_qos, bool(flags & 0x20), will_properties)
    username = cur.utf8() if flags & 0x80 else None
    password = cur.binary() if flags & 0x40 else None
    cur.end()
    return Connect(client_id, bool(flags & 0x02), keep_alive, properties, will, username,
                   password)


def _decode_subscribe(cur: _Cursor) -> Subscribe:
    packet_id = _packet_id(cur)
    properties = cur.properties()
    requests = []
    while cur.remaining():
        topic_filter = cur.utf8()
        options = cur.byte()
        if options & 0xC0 or options & 0x03 == 3 or (options >> 4) & 0x03 == 3:
            raise MalformedPacket("invalid subscription options")  # 3.8.3.1
        requests.append(SubscriptionRequest(topic_filter, options & 0x03, bool(options & 0x04),
                                            bool(options & 0x08), (options >> 4) & 0x03))
    if not requests:
        raise ProtocolViolation("SUBSCRIBE without a topic filter")  # 3.8.3
    return Subscribe(packet_id, tuple(requests), properties)


def _decode_body(ptype: int, flags: int, body: bytes) -> Packet:
    cur = _Cursor(body)
    if ptype == PacketType.PUBLISH:
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise MalformedPacket("PUBLISH with QoS 3")  # 3.3.1.2
        topic = cur.utf8()
        packet_id = _packet_id(cur) if qos else 0
        properties = cur.properties()
        return Publish(topic, cur.take(cur.remaining()), qos, bool(flags & 0x01),
                       bool(flags & 0x08), packet_id, properties)
    expected_flags = 0x02 if ptype in (PacketType.SUBSCRIBE, PacketType.UNSUBSCRIBE) else 0
    if flags != expected_flags:
        raise MalformedPacket("reserved fixed-header flags are wrong")  # 2.1.3
    packet: Packet
    if ptype == PacketType.CONNECT:
        return _decode_connect(cur)
    if ptype == PacketType.PUBACK:
        packet = Puback(_packet_id(cur), *_reason_and_properties(cur))
    elif ptype == PacketType.SUBSCRIBE:
        packet = _decode_subscribe(cur)
    elif ptype == PacketType.UNSUBSCRIBE:
        packet_id, properties = _packet_id(cur), cur.properties()
        filters = []
        while cur.remaining():
            filters.append(cur.utf8())
        if not filters:
            raise ProtocolViolation("UNSUBSCRIBE without a topic filter")  # 3.10.3
        packet = Unsubscribe(packet_id, tuple(filters), properties)
    elif ptype == PacketType.PINGREQ:
        packet = Pingreq()
    elif ptype == PacketType.PINGRESP:
        packet = Pingresp()
    elif ptype == PacketType.DISCONNECT:
        packet = Disconnect(*_reason_and_properties(cur))
    elif ptype == PacketType.CONNACK:
        ack_flags, reason = cur.byte(), cur.byte()
        if ack_flags & 0xFE:
            raise MalformedPacket("reserved CONNACK flags set")
        packet = Connack(bool(ack_flags), reason, cur.properties())
    elif ptype in (PacketType.SUBACK, PacketType.UNSUBACK):
        packet_id, properties = _packet_id(cur), cur.properties()
        codes = tuple(cur.take(cur.remaining()))
        cls = Suback if ptype == PacketType.SUBACK else Unsuback
        packet = cls(packet_id, codes, properties)
    else:
        # QoS 2 flow and AUTH: this broker advertises maximum QoS 1 and no enhanced auth.
        raise ProtocolViolation(f"{PacketType(ptype).name} is not supported by this broker")
    cur.end()
    return packet


class PacketDecoder:
    """Splits a byte stream into packets: ``feed(bytes) -> [packet, ...]``.

    Raises a :class:`PacketError` on the first bad packet; the stream cannot be resumed after it.
    A packet longer than ``max_packet_size`` (whole packet, 3.1.2.11.4) is refused as soon as its
    fixed header is read, before its body is buffered.
    """

    def __init__(self, max_packet_size: int = MAX_REMAINING_LENGTH + 5) -> None:
        self.max_packet_size = max_packet_size
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        """Add received bytes and return every packet they complete."""
        self._buffer += data
        packets: list[Packet] = []
        while True:
            header = self._fixed_header()
            if header is None:
                return packets
            first, header_len, length = header
            if header_len + length > len(self._buffer):
                return packets
            body = bytes(self._buffer[header_len:header_len + length])
            del self._buffer[:header_len + length]
            ptype, flags = first >> 4, first & 0x0F
            if ptype == 0:
                raise MalformedPacket("reserved packet type 0")
            packets.append(_decode_body(ptype, flags, body))

    def _fixed_header(self) -> tuple[int, int, int] | None:
        buf = self._buffer
        length = 0
        for i in range(1, 5):
            if i >= len(buf):
                return None
            length |= (buf[i] & 0x7F) << (7 * (i - 1))
            if not buf[i] & 0x80:
                if i + 1 + length > self.max_packet_size:
                    raise PacketTooLarge(f"packet of {i + 1 + length} bytes")
                return buf[0], i + 1, length
        raise MalformedPacket("remaining length longer than four bytes")
