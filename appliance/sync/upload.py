"""The outbox drain: uploads queued transactions and records central's answers.

A bounded window of transactions is in flight at once; within the window each transaction goes
``meta``, chunks, ``end``, then waits for central's answer. ``missing`` resends just the named
chunks; silence re-asks with ``meta`` + ``end`` (central answers with what it lacks), so a
transaction interrupted by a lost link resumes instead of starting over. Only ``stored`` ends a
delivery; the outbox row stays until then, whatever happens to the link or the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from appliance.errors import SyncError
from appliance.store.errors import DiskFull, StoreError
from appliance.store.outbox import OutboxItem
from appliance.store.store import Store
from appliance.sync.config import MqttSection
from appliance.sync.link import MqttLink, NotConnected
from appliance.sync.protocol import Ack, AckStatus, MalformedMessage, Topics, meta_for, split

log = logging.getLogger(__name__)

QUERY_ROUNDS = 5  # silent rounds before the transaction goes back to the queue with backoff
PIPELINE = 16  # chunks of one transaction awaiting their PUBACK at once


class Uploader:
    """Drains the outbox over an :class:`MqttLink`."""

    def __init__(
        self,
        store: Store,
        link: MqttLink,
        topics: Topics,
        config: MqttSection,
        *,
        clock_trusted: Callable[[], bool] = lambda: True,
        manifest_version: str = "",
        on_change: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.store = store
        self.link = link
        self.topics = topics
        self.config = config
        self.clock_trusted = clock_trusted
        self.manifest_version = manifest_version
        self.on_change = on_change
        self.paused = False
        self.rate_per_s = config.drain_rate_per_s
        self._wake = asyncio.Event()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._answers: dict[str, asyncio.Queue[Ack]] = {}
        self._last_start = 0.0
        self.delivered = 0
        self.looks = 0  # passes of the drain over its state: a test's proof that it looked

    @property
    def inflight(self) -> int:
        """Transactions being uploaded now."""
        return len(self._inflight)

    def wake(self) -> None:
        """Something changed (new booking, reconnect, resume): look at the queue now."""
        self._wake.set()

    def pause(self) -> None:
        """Stop starting new uploads (running ones finish)."""
        self.paused = True

    def resume(self) -> None:
        """Start uploading again."""
        self.paused = False
        self.wake()

    def throttle(self, rate_per_s: float) -> None:
        """Limit new uploads to ``rate_per_s`` transactions per second (0: no limit)."""
        self.rate_per_s = max(0.0, rate_per_s)
        self.wake()

    # ---- answers from central -------------------------------------------------------------

    def on_ack(self, payload: bytes) -> None:
        """Handle one message from the ack topic (on the event loop)."""
        try:
            ack = Ack.decode(payload)
        except MalformedMessage as exc:
            log.warning("sync: ignored malformed ack: %s", exc)
            return
        answers = self._answers.get(ack.transaction_id)
        if answers is not None:
            answers.put_nowait(ack)
        elif ack.status in (AckStatus.STORED, AckStatus.REJECTED):
            # a late answer (e.g. for an upload from before a restart) is still the truth
            asyncio.ensure_future(self._settle_late(ack))

    async def _settle_late(self, ack: Ack) -> None:
        try:
            await self._apply_final(ack)
        except StoreError:
            log.exception("sync: could not record a late answer")

    async def _apply_final(self, ack: Ack) -> bool:
        if ack.status is AckStatus.STORED:
            changed = await self.store.mark_stored(ack.transaction_id, ack.receipt)
            if changed:
                self.delivered += 1
                self._changed(ack.transaction_id, "stored", {"receipt": ack.receipt})
            return True
        if ack.status is AckStatus.REJECTED:
            if await self.store.mark_rejected(ack.transaction_id, ack.reason):
                self._changed(ack.transaction_id, "rejected", {"reason": ack.reason})
            return True
        return False

    def _changed(self, txid: str, state: str, detail: dict[str, Any]) -> None:
        log.info("sync: transaction %s %s", txid, state)
        if self.on_change is not None:
            self.on_change(txid, state, detail)

    # ---- the drain ------------------------------------------------------------------------

    async def run(self) -> None:
        """Main loop: keep the window full while connected and not paused."""
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as the event is set (stop() wakes us), and the drain would never end
            try:
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            self.looks += 1
            if self.paused or not self.link.connected:
                continue
            free = self.config.window - len(self._inflight)
            if free <= 0:
                continue
            try:
                items = await self.store.outbox_due(free, frozenset(self._inflight))
            except StoreError:
                log.exception("sync: cannot read the outbox")
                continue
            for item in items:
                await self._respect_rate()
                name = f"upload:{item.transaction_id}"
                task = asyncio.create_task(self._deliver(item), name=name)
                self._inflight[item.transaction_id] = task
                task.add_done_callback(lambda _t, txid=item.transaction_id: self._done(txid))

    async def stop(self) -> None:
        """Cancel uploads in flight; their rows stay queued (or sending: requeued at start)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _done(self, txid: str) -> None:
        self._inflight.pop(txid, None)
        self.wake()

    async def _respect_rate(self) -> None:
        if self.rate_per_s <= 0:
            return
        gap = 1.0 / self.rate_per_s - (time.monotonic() - self._last_start)
        if gap > 0:
            await asyncio.sleep(gap)
        self._last_start = time.monotonic()

    async def _deliver(self, item: OutboxItem) -> None:
        txid = item.transaction_id
        answers: asyncio.Queue[Ack] = asyncio.Queue()
        self._answers[txid] = answers
        try:
            await self.store.mark_sending(txid)
            data = await self.store.load_transaction(txid)
            chunks = split(data, self.config.chunk_size)
            meta = meta_for(
                txid,
                data,
                self.config.chunk_size,
                sha256=item.sha256,
                content_type=item.content_type,
                priority=item.priority,
                clock_trusted=self.clock_trusted(),
                manifest_version=self.manifest_version,
                booking_id=item.booking_id,
            )
            # a first attempt sends everything; a resumed one asks first what is missing
            to_send: list[int] = list(range(len(chunks))) if item.attempts == 0 else []
            send_meta = True
            silent = 0
            while True:
                batch = [(self.topics.meta(txid), meta.encode())] if send_meta else []
                batch += [(self.topics.chunk(txid, n), chunks[n]) for n in to_send]
                await self._publish_pipelined(batch)
                # `end` only after the broker took every chunk, so central sees it last
                await self.link.publish(self.topics.end(txid), meta.encode())
                try:
                    async with asyncio.timeout(self.config.ack_timeout_s):
                        ack = await answers.get()
                except TimeoutError:
                    silent += 1
                    if silent >= QUERY_ROUNDS:
                        raise NotConnected("central does not answer") from None
                    to_send, send_meta = [], True
                    continue
                silent = 0
                if await self._apply_final(ack):
                    return
                to_send = [n for n in ack.missing if 0 <= n < len(chunks)]
                send_meta = ack.need_meta
        except (NotConnected, SyncError) as exc:
            await self._requeue(txid, item.attempts, str(exc))
        except DiskFull as exc:
            # the drain is what frees the disk (delivered prints are purged): the store's
            # reserve is there for this moment. New bookings stay refused until it is held again.
            released = await asyncio.to_thread(self.store.release_reserve)
            log.warning("sync: %s; %s", exc, "the store's reserve was given back to the drain"
                        if released else "no reserve left to give back")
            await self._requeue(txid, item.attempts, "disk full")
        except StoreError as exc:
            log.error("sync: the store failed during the upload of %s: %s", txid, exc)
            await self._requeue(txid, item.attempts, "store error")
        except KeyError as exc:
            log.error("sync: transaction %s has no data to send: %s", txid, exc)
            await self._requeue(txid, item.attempts, "no data")
        finally:
            self._answers.pop(txid, None)

    async def _publish_pipelined(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish with up to PIPELINE PUBACKs outstanding; all settle before an error is raised.

        One at a time cost a broker round trip per chunk.
        """
        for start in range(0, len(messages), PIPELINE):
            group = messages[start : start + PIPELINE]
            results = await asyncio.gather(
                *(self.link.publish(topic, payload) for topic, payload in group),
                return_exceptions=True,
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    async def _requeue(self, txid: str, attempts: int, why: str) -> None:
        delay = min(300.0, 2.0 * (2 ** min(attempts, 8)))
        try:
            await self.store.mark_retry(txid, delay if self.link.connected else 0.0, why)
        except StoreError:
            log.exception("sync: could not requeue %s", txid)
