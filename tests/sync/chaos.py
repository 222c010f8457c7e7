"""A TCP proxy between a station and the broker that cuts connections (asyncio, in the test)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable


class ChaosProxy:
    """Forwards bytes both ways; each connection dies after a random byte budget, if set.

    ``budget`` returns how many bytes (both directions together) a new connection may carry
    before it is aborted (RST, no DISCONNECT), or None for no limit.
    """

    def __init__(self, host: str, port: int, *, budget: Callable[[], int | None] = lambda: None
                 ) -> None:
        self.target = (host, port)
        self.budget = budget
        self.port = 0
        self.connections = 0
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._live: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut_all(self) -> None:
        """Abort every live connection now, as a dead network would."""
        for pair in list(self._live):
            self._abort(pair)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut_all()
        if self._server is not None:
            await self._server.wait_closed()

    def _abort(self, pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        if pair in self._live:
            self._live.discard(pair)
            self.cuts += 1
        for writer in pair:
            writer.transport.abort()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            b_reader, b_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.transport.abort()
            return
        pair = (c_writer, b_writer)
        self._live.add(pair)
        left = [self.budget()]

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    data = await reader.read(4096)
                    if not data:
                        break
                    if left[0] is not None:
                        if len(data) >= left[0]:
                            writer.write(data[: left[0]])  # a packet cut in the middle
                            self._abort(pair)
                            return
                        left[0] -= len(data)
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            if pair in self._live:
                self._live.discard(pair)
                for w in pair:
                    w.close()

        await asyncio.gather(pump(c_reader, b_writer), pump(b_reader, c_writer))


def random_budget(seed: int, low: int, high: int, cuts: int) -> Callable[[], int | None]:
    """Budgets in [low, high] for the first ``cuts`` connections, then unlimited."""
    rng = random.Random(seed)
    count = [0]

    def budget() -> int | None:
        count[0] += 1
        return rng.randint(low, high) if count[0] <= cuts else None

    return budget
