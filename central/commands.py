"""Central's side of remote commands: sign, send as an MQTT 5 request, wait for the answer.

The request carries a ResponseTopic under ``<prefix>/<station>/reply/<this client>`` (the only
place a station will answer: see appliance/sync/commands.py) and random CorrelationData that the
answer repeats, so many requests can be outstanding on one connection.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.sync.commands import COMMAND_VERSION
from appliance.sync.signing import key_id, sign


class CommandTimeout(TimeoutError):
    """The station did not answer in time (offline, or the command was dropped)."""


def command_body(command: str, args: dict[str, Any] | None = None, *,
                 key: Ed25519PrivateKey | None = None, now: float | None = None) -> dict[str, Any]:
    """A command payload, signed when ``key`` is given."""
    body = {"v": COMMAND_VERSION, "command": command, "args": args or {},
            "issued_at": round(now if now is not None else time.time(), 3),
            "nonce": secrets.token_hex(16)}
    return sign(body, key) if key is not None else body


def load_private_key(path: Path, passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Central's Ed25519 signing key from a PEM file."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def write_keypair(private_path: Path, public_path: Path) -> str:
    """Make a new signing key (mode 600) and its public half for the stations; returns its id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())


class CommandClient:
    """Sends commands to stations and returns their answers (blocking; one MQTT connection)."""

    def __init__(self, host: str, port: int, *, prefix: str = "bst",
                 key: Ed25519PrivateKey | None = None, tls: ssl.SSLContext | None = None,
                 username: str | None = None, password: str | None = None,
                 client_id: str | None = None) -> None:
        self.prefix = prefix
        self.key = key
        self.client_id = client_id or f"central-ops-{uuid.uuid4().hex[:8]}"
        self._answers: dict[bytes, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._subscribed: set[str] = set()
        self._subacks: set[int] = set()
        self._connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv5)
        if tls is not None:
            client.tls_set_context(tls)
        if username:
            client.username_pw_set(username, password)
        client.on_connect = lambda *_a: self._connected.set()
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        self._host, self._port = host, port

    def __enter__(self) -> CommandClient:
        self.connect()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and start the network thread."""
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise ConnectionError(f"cannot reach the broker at {self._host}:{self._port}")

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def reply_topic(self, station: str) -> str:
        """Where this client asks ``station`` to answer."""
        return f"{self.prefix}/{station}/reply/{self.client_id}"

    def send(self, station: str, payload: bytes, *, reply_topic: str | None = None,
             correlation: bytes | None = None, timeout: float = 10.0) -> dict[str, Any]:
        """Publish raw command bytes and wait for the answer with the same correlation data."""
        reply_topic = reply_topic or self.reply_topic(station)
        if reply_topic not in self._subscribed:
            _rc, mid = self._client.subscribe(reply_topic, qos=1)
            with self._cond:  # the answer could beat a subscription the broker has not taken
                if not self._cond.wait_for(lambda: mid in self._subacks, timeout):
                    raise CommandTimeout(f"the broker did not confirm {reply_topic}")
            self._subscribed.add(reply_topic)
        correlation = correlation or secrets.token_bytes(16)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = reply_topic
        props.CorrelationData = correlation
        # stations keep persistent sessions: a request nobody waits for must not run later
        props.MessageExpiryInterval = max(1, int(timeout))
        self._client.publish(f"{self.prefix}/{station}/cmd", payload, qos=1,
                             properties=props).wait_for_publish(timeout)
        deadline = time.monotonic() + timeout
        with self._cond:
            while correlation not in self._answers:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CommandTimeout(f"{station} did not answer within {timeout:.0f} s")
                self._cond.wait(left)
            return self._answers.pop(correlation)

    def request(self, station: str, command: str, args: dict[str, Any] | None = None, *,
                timeout: float = 10.0) -> dict[str, Any]:
        """Sign (when a key is set) and send one command; returns the station's answer."""
        body = command_body(command, args, key=self.key)
        return self.send(station, json.dumps(body).encode(), timeout=timeout)

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._cond:
            self._subacks.add(mid)
            self._cond.notify_all()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        correlation = getattr(msg.properties, "CorrelationData", None)
        if correlation is None:
            return
        try:
            answer = json.loads(msg.payload)
        except ValueError:
            return
        with self._cond:
            self._answers[bytes(correlation)] = answer
            self._cond.notify_all()
