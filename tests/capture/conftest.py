"""The booking service on its own: a real store, the emulated scanner, real NFIQ 2 and model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from appliance.app import build_processor
from appliance.capture.booking import BookingService, ImagingThread
from appliance.capture.processing import BookingProcessor
from appliance.config import StationConfig
from appliance.store.crypto import BlobCipher, new_key
from appliance.store.store import Store
from appliance.system.clock import ClockTrust
from appliance.system.events import Events
from drivers.emulated import EmulatedConfig, EmulatedLivescan
from drivers.worker import DeviceWorker


@pytest.fixture(scope="module")
def processor() -> BookingProcessor:
    """NFIQ 2, the NIST matcher and the minutiae model, warmed up once for the module."""
    config = StationConfig.model_validate({"records": {"profile": "local-flats"},
                                           "capture": {"sequence": "flats"},
                                           "quality": {"min_nfiq2_plain": 0}})
    made = build_processor(config)
    made.warm_up()
    return made


@pytest.fixture
async def booking_factory(tmp_path: Path, processor: BookingProcessor
                          ) -> AsyncIterator[Callable[..., BookingService]]:
    made: list[tuple[BookingService, DeviceWorker, Store, ImagingThread]] = []

    async def make(*, sequence: str = "flats", faults: dict | None = None, seed: int = 5,
                   store: Store | None = None) -> BookingService:
        if store is None:
            store = Store(tmp_path / f"station-{len(made)}.db", BlobCipher(new_key()))
            store.open()
        driver = EmulatedLivescan(EmulatedConfig(seed=seed, faults=faults or {}))
        worker = DeviceWorker(driver)
        worker.start()
        await worker.wait_ready(timeout=60)
        imaging = ImagingThread()
        service = BookingService(worker, store, processor, imaging, Events(), sequence=sequence,
                                 clock=ClockTrust.SYNCHRONISED)
        made.append((service, worker, store, imaging))
        return service

    yield make
    for _service, worker, store, imaging in made:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(imaging.shutdown)
        store.close()
