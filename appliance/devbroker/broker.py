"""An embedded MQTT 5.0 broker, so the demo runs where no Mosquitto is installed.

It serves what the station's sync link uses and nothing more: MQTT 5 clients, QoS 0 and 1
(maximum QoS 1 is advertised, so clients downgrade QoS 2), persistent sessions with a bounded
queue, retained messages, will messages (with will delay), wildcards, keep-alive, and PUBLISH
properties forwarded unchanged. No TLS, no authentication, no topic aliases, no subscription
identifiers, no shared subscriptions: it listens on loopback for a demo and is not a production
broker. All state lives on one asyncio loop; each client connection has a reader task (the
server's handler) and a sender task that drains its session's queue.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import replace

from appliance.devbroker.codec import (
    V311_CONNACK_UNACCEPTABLE_PROTOCOL,
    PacketDecoder,
    PacketError,
    ProtocolViolation,
    UnsupportedProtocolVersion,
    encode,
)
from appliance.devbroker.packets import (
    Connack,
    Connect,
    Disconnect,
    Packet,
    Pingreq,
    Pingresp,
    PropertyId,
    Puback,
    Publish,
    ReasonCode,
    Suback,
    Subscribe,
    Unsuback,
    Unsubscribe,
    Will,
    get_property,
)
from appliance.devbroker.session import NEVER_EXPIRES, Delivery, Message, Session
from appliance.devbroker.topics import (
    is_shared_subscription,
    is_valid_topic_filter,
    is_valid_topic_name,
    topic_matches,
)
from appliance.errors import SyncError

log = logging.getLogger(__name__)

MAX_PACKET_SIZE = 1024 * 1024  # fits the sync protocol's 128 KiB chunks with room to spare
MAX_QUEUED_MESSAGES = 10_000
_READ_SIZE = 64 * 1024


class DevBrokerError(SyncError):
    """The embedded broker cannot start or was used before it started."""


class _Connection:
    """One client's network connection: reads its packets and sends its session's messages."""

    def __init__(self, broker: EmbeddedBroker, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.broker = broker
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unknown peer"
        self.decoder = PacketDecoder(broker.max_packet_size)
        self.session: Session | None = None
        self.will: Will | None = None
        self.keep_alive = 0
        self.receive_maximum = 0xFFFF
        self.max_packet_size = 0xFFFFFFFF
        self.sender: asyncio.Task | None = None
        self.detached = False

    async def run(self) -> None:
        """Serve the connection until it ends, then hand the session back to the broker."""
        publish_will = True
        try:
            publish_will = await self._serve()
        except PacketError as exc:
            log.warning("embedded broker: closing %s: %s (%s)", self.name, exc,
                        exc.reason_code.name)
            self._refuse(exc)
        except TimeoutError:
            log.info("embedded broker: %s went silent; closing it", self.name)
            if self.session is not None:
                self.write(Disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT))
        except (ConnectionError, OSError):
            pass  # the client vanished: the will below is exactly for this
        finally:
            self.broker._detach(self, publish_will)
            self.writer.close()

    async def _serve(self) -> bool:
        """Read and handle packets; False when the client said a normal goodbye."""
        while True:
            if self.session is None:
                timeout = self.broker.connect_timeout
            else:
                timeout = self.keep_alive * 1.5 if self.keep_alive else None  # 3.1.2.10
            data = await asyncio.wait_for(self.reader.read(_READ_SIZE), timeout)
            if not data:
                return True
            for packet in self.decoder.feed(data):
                if self.detached:
                    return True  # taken over: the session now belongs to the new connection
                if isinstance(packet, Disconnect) and self.session is not None:
                    return self._on_disconnect(packet)
                self._handle(packet)

    def _refuse(self, exc: PacketError) -> None:
        if self.session is not None:
            self.write(Disconnect(exc.reason_code))
        elif isinstance(exc, UnsupportedProtocolVersion) and exc.level in (3, 4):
            self.writer.write(V311_CONNACK_UNACCEPTABLE_PROTOCOL)
        else:
            self.write(Connack(False, exc.reason_code))

    def write(self, packet: Packet) -> None:
        """Queue a packet on the transport, unless the connection is already closing."""
        if not self.writer.is_closing():
            self.writer.write(encode(packet))

    def _handle(self, packet: Packet) -> None:
        if self.session is None:
            if not isinstance(packet, Connect):
                raise ProtocolViolation(f"{type(packet).__name__} before CONNECT")
            self._on_connect(packet)
        elif isinstance(packet, Publish):
            self._on_publish(packet)
        elif isinstance(packet, Puback):
            self.session.inflight.pop(packet.packet_id, None)
            self.session.wakeup.set()
        elif isinstance(packet, Subscribe):
            self._on_subscribe(packet)
        elif isinstance(packet, Unsubscribe):
            codes = [ReasonCode.SUCCESS if self.session.subscriptions.pop(f, None)
                     else ReasonCode.NO_SUBSCRIPTION_EXISTED for f in packet.topic_filters]
            self.write(Unsuback(packet.packet_id, tuple(codes)))
        elif isinstance(packet, Pingreq):
            self.write(Pingresp())
        else:
            raise ProtocolViolation(f"a client may not send {type(packet).__name__}")

    def _on_connect(self, connect: Connect) -> None:
        if get_property(connect.properties, PropertyId.AUTHENTICATION_METHOD) is not None:
            raise ProtocolViolation("enhanced authentication is not offered",
                                    ReasonCode.BAD_AUTHENTICATION_METHOD)
        will = connect.will
        if will is not None and will.qos > 1:
            raise ProtocolViolation("will QoS 2 is over the maximum QoS 1",
                                    ReasonCode.QOS_NOT_SUPPORTED)
        if will is not None and not is_valid_topic_name(will.topic):
            raise ProtocolViolation("invalid will topic", ReasonCode.TOPIC_NAME_INVALID)
        props = connect.properties
        self.keep_alive = connect.keep_alive
        self.receive_maximum = get_property(props, PropertyId.RECEIVE_MAXIMUM, 0xFFFF)
        self.max_packet_size = get_property(props, PropertyId.MAXIMUM_PACKET_SIZE, 0xFFFFFFFF)
        if self.receive_maximum == 0 or self.max_packet_size == 0:
            raise ProtocolViolation("receive maximum or maximum packet size of 0")  # 3.1.2.11
        self.will = will
        client_id = connect.client_id
        ack_props = [(PropertyId.MAXIMUM_QOS, 1),
                     (PropertyId.MAXIMUM_PACKET_SIZE, self.broker.max_packet_size),
                     (PropertyId.TOPIC_ALIAS_MAXIMUM, 0),
                     (PropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE, 0),
                     (PropertyId.SHARED_SUBSCRIPTION_AVAILABLE, 0)]
        if not client_id:
            client_id = f"devbroker-{secrets.token_hex(8)}"  # 3.1.3.1: server assigns one
            ack_props.append((PropertyId.ASSIGNED_CLIENT_IDENTIFIER, client_id))
        expiry = get_property(props, PropertyId.SESSION_EXPIRY_INTERVAL, 0)
        self.session, present = self.broker._attach(self, client_id, connect.clean_start, expiry)
        self.name = f"client {client_id!r} at {self.name}"
        self.write(Connack(present, ReasonCode.SUCCESS, tuple(ack_props)))
        self.sender = asyncio.create_task(self._send_queued(), name=f"devbroker-send-{client_id}")

    def _on_publish(self, publish: Publish) -> None:
        if publish.qos > 1:
            raise ProtocolViolation("QoS 2 is over the maximum QoS 1", ReasonCode.QOS_NOT_SUPPORTED)
        if get_property(publish.properties, PropertyId.TOPIC_ALIAS) is not None:
            raise ProtocolViolation("topic alias with alias maximum 0",
                                    ReasonCode.TOPIC_ALIAS_INVALID)
        if not is_valid_topic_name(publish.topic):
            raise ProtocolViolation("invalid topic name", ReasonCode.TOPIC_NAME_INVALID)
        message = Message.received(publish.topic, publish.payload, publish.qos, publish.retain,
                                   publish.properties, self.broker.now())
        matched = self.broker._publish(message, self.session.client_id)
        if publish.qos:
            reason = ReasonCode.SUCCESS if matched else ReasonCode.NO_MATCHING_SUBSCRIBERS
            self.write(Puback(publish.packet_id, reason))

    def _on_subscribe(self, subscribe: Subscribe) -> None:
        if get_property(subscribe.properties, PropertyId.SUBSCRIPTION_IDENTIFIER) is not None:
            raise ProtocolViolation("subscription identifiers are not offered",
                                    ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED)
        session = self.session
        codes: list[int] = []
        retained: list[Delivery] = []
        for request in subscribe.requests:
            topic_filter = request.topic_filter
            if is_shared_subscription(topic_filter):
                codes.append(ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED)
                continue
            if not is_valid_topic_filter(topic_filter):
                codes.append(ReasonCode.TOPIC_FILTER_INVALID)
                continue
            granted = min(request.qos, 1)
            existed = topic_filter in session.subscriptions
            session.subscriptions[topic_filter] = replace(request, qos=granted)
            codes.append(granted)
            if request.retain_handling == 0 or (request.retain_handling == 1 and not existed):
                retained += [Delivery(m, min(m.qos, granted), True)  # 3.3.1.3: retain flag set
                             for m in self.broker._retained_matching(topic_filter)]
        self.write(Suback(subscribe.packet_id, tuple(codes)))
        for delivery in retained:
            session.enqueue(delivery)

    def _on_disconnect(self, disconnect: Disconnect) -> bool:
        expiry = get_property(disconnect.properties, PropertyId.SESSION_EXPIRY_INTERVAL)
        if expiry is not None:
            if self.session.expiry_interval == 0 and expiry:
                raise ProtocolViolation("session expiry set at DISCONNECT after 0 at CONNECT")
            self.session.expiry_interval = expiry  # 3.14.2.2.2
        return disconnect.reason_code == ReasonCode.DISCONNECT_WITH_WILL_MESSAGE

    async def _send_queued(self) -> None:
        """Send the session's queued messages, holding at most receive-maximum QoS 1 in flight."""
        session = self.session
        try:
            for publish in list(session.inflight.values()):
                self.write(replace(publish, dup=True))  # 4.4: resend unacknowledged on resume
            while True:
                await session.wakeup.wait()
                session.wakeup.clear()
                while session.pending:
                    delivery = session.pending[0]
                    if delivery.qos and len(session.inflight) >= self.receive_maximum:
                        break  # a PUBACK will wake us (3.3.4, flow control)
                    session.pending.popleft()
                    await self._send(session, delivery)
        except (ConnectionError, OSError):
            pass  # the reader task sees the same loss and detaches the session
        except Exception:
            log.exception("embedded broker: sending to %s failed", self.name)
            self.writer.close()

    async def _send(self, session: Session, delivery: Delivery) -> None:
        message = delivery.message
        properties = message.properties_at(self.broker.now())
        if properties is None:
            return  # expired while queued (3.3.2.3.3)
        packet_id = session.next_packet_id() if delivery.qos else 0
        publish = Publish(message.topic, message.payload, delivery.qos, delivery.retain, False,
                          packet_id, properties)
        data = encode(publish)
        if len(data) > self.max_packet_size:
            log.warning("embedded broker: dropping a %d-byte message for %s, over its maximum "
                        "packet size", len(data), self.name)  # 3.1.2.11.4
            return
        if packet_id:
            session.inflight[packet_id] = publish
        self.writer.write(data)
        await self.writer.drain()

    def take_over(self) -> None:
        """Another connection claimed this client id (3.1.4-3): disconnect this one."""
        self.write(Disconnect(ReasonCode.SESSION_TAKEN_OVER))
        self.broker._detach(self, publish_will=True)
        self.writer.close()


class EmbeddedBroker:
    """A small MQTT 5.0 broker on the caller's asyncio loop.

    Use ``port = await broker.start()`` and ``await broker.stop()``, or
    ``async with EmbeddedBroker() as broker:`` (listens on 127.0.0.1, a free port). Start and
    stop it on the same loop; sessions and retained messages live in memory and end with
    ``stop()``.
    """

    def __init__(self, *, max_packet_size: int = MAX_PACKET_SIZE,
                 max_queued_messages: int = MAX_QUEUED_MESSAGES,
                 connect_timeout: float = 10.0) -> None:
        self.max_packet_size = max_packet_size
        self.max_queued_messages = max_queued_messages
        self.connect_timeout = connect_timeout
        self._server: asyncio.Server | None = None
        self._port = 0
        self._stopping = False
        self._sessions: dict[str, Session] = {}
        self._online: dict[str, _Connection] = {}
        self._retained: dict[str, Message] = {}
        self._will_timers: dict[str, asyncio.TimerHandle] = {}
        self._handlers: set[asyncio.Task] = set()

    @property
    def port(self) -> int:
        """The TCP port the broker listens on."""
        if self._server is None:
            raise DevBrokerError("the embedded broker is not running")
        return self._port

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host``:``port`` (0 picks a free port) and return the bound port."""
        if self._server is not None:
            raise DevBrokerError("the embedded broker is already running")
        self._stopping = False
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as exc:
            raise DevBrokerError(f"cannot listen on {host}:{port}: {exc}") from exc
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("embedded MQTT 5 broker listening on %s:%d", host, self._port)
        return self._port

    async def stop(self) -> None:
        """Disconnect every client (reason "server shutting down") and stop listening."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        for conn in list(self._online.values()):
            conn.write(Disconnect(ReasonCode.SERVER_SHUTTING_DOWN))
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()
        for timer in [*self._will_timers.values(),
                      *(s.expiry_timer for s in self._sessions.values() if s.expiry_timer)]:
            timer.cancel()
        self._will_timers.clear()
        self._online.clear()
        self._sessions.clear()
        self._retained.clear()
        self._server = None

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def now(self) -> float:
        """Loop time, the clock for message expiry."""
        return asyncio.get_running_loop().time()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        conn = _Connection(self, reader, writer)
        try:
            await conn.run()
        except Exception:
            # Task boundary: one client's failure must never take the broker down.
            log.exception("embedded broker: connection %s failed", conn.name)
            self._detach(conn, publish_will=True)
            writer.close()
        finally:
            self._handlers.discard(task)

    def _attach(self, conn: _Connection, client_id: str, clean_start: bool,
                expiry: int) -> tuple[Session, bool]:
        previous = self._online.get(client_id)
        if previous is not None:
            previous.take_over()
        timer = self._will_timers.pop(client_id, None)
        if timer is not None:
            timer.cancel()  # reconnected within the will delay: no will (3.1.3.2.2)
        session = self._sessions.get(client_id)
        present = session is not None and not clean_start
        if session is not None and session.expiry_timer is not None:
            session.expiry_timer.cancel()
            session.expiry_timer = None
        if not present:
            session = Session(client_id, self.max_queued_messages)
            self._sessions[client_id] = session
        if session.dropped:
            log.warning("embedded broker: %d messages for %r were dropped while its queue was "
                        "full", session.dropped, client_id)
            session.dropped = 0
        session.expiry_interval = expiry
        session.online = True
        session.wakeup.set()  # send whatever queued up while the client was away
        self._online[client_id] = conn
        return session, present

    def _detach(self, conn: _Connection, publish_will: bool) -> None:
        if conn.detached or conn.session is None:
            return
        conn.detached = True
        if conn.sender is not None:
            conn.sender.cancel()
        session = conn.session
        session.online = False
        client_id = session.client_id
        if self._online.get(client_id) is conn:
            del self._online[client_id]
        if self._stopping:
            return
        if publish_will and conn.will is not None:
            self._trigger_will(client_id, conn.will, session.expiry_interval)
        if session.expiry_interval == 0:
            if self._sessions.get(client_id) is session:
                del self._sessions[client_id]
        elif session.expiry_interval != NEVER_EXPIRES:
            session.expiry_timer = asyncio.get_running_loop().call_later(
                session.expiry_interval, self._expire, session)

    def _expire(self, session: Session) -> None:
        if self._sessions.get(session.client_id) is session and not session.online:
            del self._sessions[session.client_id]

    def _trigger_will(self, client_id: str, will: Will, session_expiry: int) -> None:
        delay = min(get_property(will.properties, PropertyId.WILL_DELAY_INTERVAL, 0),
                    session_expiry)  # the will goes at the latest when the session ends
        if delay == 0:
            self._publish_will(client_id, will)
        else:
            self._will_timers[client_id] = asyncio.get_running_loop().call_later(
                delay, self._publish_will, client_id, will)

    def _publish_will(self, client_id: str, will: Will) -> None:
        self._will_timers.pop(client_id, None)
        self._publish(Message.received(will.topic, will.payload, will.qos, will.retain,
                                       will.properties, self.now()), client_id)

    def _publish(self, message: Message, publisher_id: str) -> bool:
        """Store it if retained, queue it for every matching session; True if any matched."""
        if message.retain:
            if message.payload:
                self._retained[message.topic] = message
            else:
                self._retained.pop(message.topic, None)  # 3.3.1.3: empty payload clears
        matched = False
        for session in self._sessions.values():
            request = session.best_subscription(message.topic, publisher_id)
            if request is None:
                continue
            matched = True
            retain = message.retain and request.retain_as_published
            session.enqueue(Delivery(message, min(message.qos, request.qos), retain))
        return matched

    def _retained_matching(self, topic_filter: str) -> list[Message]:
        return [m for topic, m in self._retained.items() if topic_matches(topic_filter, topic)]
