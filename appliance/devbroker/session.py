"""What the embedded broker keeps for a client between connections: its MQTT 5 session.

A session (4.1) outlives its network connection while its session expiry interval runs: it keeps
the subscriptions, the QoS 1 messages sent but not yet acknowledged, and the messages queued
while the client was away. Nothing here does I/O; the broker's connection code drains it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from dataclasses import dataclass, field

from appliance.devbroker.packets import Properties, PropertyId, Publish, SubscriptionRequest
from appliance.devbroker.topics import topic_matches

log = logging.getLogger(__name__)

NEVER_EXPIRES = 0xFFFFFFFF  # session expiry interval meaning "never" (3.1.2.11.2)

# Properties that belong to one hop, not to the application message (3.3.2.3.4, 3.3.4).
_HOP_PROPERTIES = frozenset({PropertyId.TOPIC_ALIAS, PropertyId.SUBSCRIPTION_IDENTIFIER,
                             PropertyId.WILL_DELAY_INTERVAL})


@dataclass(frozen=True)
class Message:
    """An application message as the broker holds it, with its properties forwarded unchanged."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    properties: Properties
    received_at: float
    expiry_interval: int | None

    @classmethod
    def received(cls, topic: str, payload: bytes, qos: int, retain: bool,
                 properties: Properties, now: float) -> Message:
        """A message just received (or a will just triggered) at loop time ``now``."""
        kept = tuple((k, v) for k, v in properties if k not in _HOP_PROPERTIES)
        interval = next((v for k, v in kept if k == PropertyId.MESSAGE_EXPIRY_INTERVAL), None)
        return cls(topic, payload, qos, retain, kept, now, interval)

    def properties_at(self, now: float) -> Properties | None:
        """Properties to send at ``now``, with the expiry interval counted down (3.3.2.3.3).

        None when the message has expired and must not be delivered any more.
        """
        if not self.expiry_interval:  # absent, or 0 which this broker reads as "no lifetime"
            return self.properties
        remaining = math.ceil(self.received_at + self.expiry_interval - now)
        if remaining <= 0:
            return None
        return tuple((k, remaining if k == PropertyId.MESSAGE_EXPIRY_INTERVAL else v)
                     for k, v in self.properties)


@dataclass(frozen=True)
class Delivery:
    """A message on its way to one subscriber, at the QoS and retain flag it gets there."""

    message: Message
    qos: int
    retain: bool


@dataclass
class Session:
    """One client's session state (4.1)."""

    client_id: str
    max_queued: int
    expiry_interval: int = 0
    subscriptions: dict[str, SubscriptionRequest] = field(default_factory=dict)
    pending: deque[Delivery] = field(default_factory=deque)
    inflight: dict[int, Publish] = field(default_factory=dict)
    online: bool = False
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    expiry_timer: asyncio.TimerHandle | None = None
    dropped: int = 0
    _last_packet_id: int = 0

    def enqueue(self, delivery: Delivery) -> bool:
        """Queue a delivery; False when it was dropped (QoS 0 while offline, or queue full)."""
        if not self.online and delivery.qos == 0:
            return False  # like Mosquitto's default: QoS 0 is not queued for absent clients
        if len(self.pending) >= self.max_queued:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("embedded broker: queue for %r is full (%d messages); dropping new "
                            "messages until it drains", self.client_id, self.max_queued)
            return False
        self.pending.append(delivery)
        self.wakeup.set()
        return True

    def best_subscription(self, topic: str, publisher_id: str) -> SubscriptionRequest | None:
        """The matching subscription with the highest QoS, honouring no-local (3.8.3.1)."""
        best = None
        for topic_filter, request in self.subscriptions.items():
            if request.no_local and publisher_id == self.client_id:
                continue
            if topic_matches(topic_filter, topic) and (best is None or request.qos > best.qos):
                best = request
        return best

    def next_packet_id(self) -> int:
        """A packet identifier not used by any unacknowledged message (2.2.1)."""
        while True:
            self._last_packet_id = self._last_packet_id % 0xFFFF + 1
            if self._last_packet_id not in self.inflight:
                return self._last_packet_id
