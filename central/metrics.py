"""Prometheus metrics: every station's telemetry, and the receiver's own work.

Names follow Prometheus conventions: the unit in the name (``_seconds``, ``_bytes``), counters end
in ``_total``, and labels come from bounded sets: the station id (the fleet, each one an
authenticated MQTT user), the scanner state, a rejection reason from a fixed list, a signature
kind. No booking number, transaction id or personal datum is ever a label or a value.

The station metrics are built on each scrape from :class:`~central.fleet.FleetWatch`'s
snapshot (a custom collector), so a station that disappears from the watch disappears from the
exposition instead of leaving stale series behind.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from central.fleet import SCANNER_STATES, FleetWatch, StationView

MIB = 1024 * 1024


class RejectReason(enum.StrEnum):
    """Why the receiver refused a transaction: the only values its ``reason`` label takes."""

    TOO_LARGE = "too_large"
    CHECKSUM = "checksum"
    INVALID_RECORD = "invalid_record"


class FleetCollector(Collector):
    """Every station's latest telemetry as metric families, built at scrape time."""

    def __init__(self, watch: FleetWatch) -> None:
        self.watch = watch

    def collect(self) -> Iterator[Metric]:
        """One family per figure, one sample per station."""
        views = sorted(self.watch.snapshot(), key=lambda v: v.station_id)
        yield from self._station_families(views)
        messages = CounterMetricFamily("bst_fleet_telemetry_messages",
                                       "Telemetry messages the fleet watch absorbed.")
        messages.add_metric([], self.watch.messages)
        yield messages
        malformed = CounterMetricFamily("bst_fleet_telemetry_malformed_messages",
                                        "Telemetry messages ignored as malformed.")
        malformed.add_metric([], self.watch.malformed)
        yield malformed
        stations = GaugeMetricFamily("bst_fleet_stations", "Stations heard from.")
        stations.add_metric([], len(views))
        yield stations

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the families depend on the fleet."""
        return iter(())

    @staticmethod
    def _station_families(views: list[StationView]) -> Iterator[Metric]:
        st = ["station"]
        online = GaugeMetricFamily("bst_station_online",
                                   "1 while the station's retained status says online.", labels=st)
        last_seen = GaugeMetricFamily("bst_station_last_seen_timestamp_seconds",
                                      "Unix time of the station's last telemetry message.",
                                      labels=st)
        queue = GaugeMetricFamily("bst_station_queue_transactions",
                                  "Transactions the station holds that central has not stored.",
                                  labels=st)
        oldest = GaugeMetricFamily("bst_station_oldest_unsent_age_seconds",
                                   "Age of the oldest booking not yet stored by central "
                                   "(0 when none waits).", labels=st)
        drain = GaugeMetricFamily("bst_station_drain_transactions_per_second",
                                  "Deliveries per second between the last two health messages.",
                                  labels=st)
        delivered = CounterMetricFamily("bst_station_delivered_transactions",
                                        "Transactions central stored since the station's "
                                        "service started.", labels=st)
        scanner = GaugeMetricFamily("bst_station_scanner_state",
                                    "1 for the scanner's current state.",
                                    labels=["station", "state"])
        nfiq2 = GaugeMetricFamily("bst_station_nfiq2_median_today",
                                  "Median NFIQ 2 score of today's impressions (UTC day).",
                                  labels=st)
        today = GaugeMetricFamily("bst_station_bookings_today",
                                  "Bookings committed since midnight UTC.", labels=st)
        disk_free = GaugeMetricFamily("bst_station_disk_free_bytes",
                                      "Free space on the station's data disk.", labels=st)
        disk_size = GaugeMetricFamily("bst_station_disk_size_bytes",
                                      "Size of the station's data disk.", labels=st)
        clock = GaugeMetricFamily("bst_station_clock_trusted",
                                  "1 while the station's clock is synchronised and TLS saw no "
                                  "clock problem.", labels=st)
        paused = GaugeMetricFamily("bst_station_uploads_paused",
                                   "1 while uploads are paused by a command.", labels=st)
        signatures = CounterMetricFamily("bst_station_signature_failures",
                                         "Signatures that did not verify on the station, by what "
                                         "was signed (command, receipt).",
                                         labels=["station", "kind"])
        build = InfoMetricFamily("bst_station_build", "Software and protocol of the station.",
                                 labels=st)
        model = InfoMetricFamily("bst_station_model", "Versions of the station's models.",
                                 labels=st)
        for v in views:
            sid = [v.station_id]
            online.add_metric(sid, 1.0 if v.state == "online" else 0.0)
            last_seen.add_metric(sid, v.last_seen)
            if v.birth:
                build.add_metric(sid, {"software": str(v.birth.get("software", ""))[:40],
                                       "protocol": str(v.birth.get("protocol", ""))[:10]})
                for name, version in sorted((v.birth.get("models") or {}).items())[:8]:
                    model.add_metric(sid, {"model": str(name)[:40],
                                           "version": str(version)[:60]})
            h = v.health
            if not h:
                continue
            queue.add_metric(sid, _num(h.get("queue_depth")))
            oldest.add_metric(sid, _num(h.get("oldest_unsent_age_s")))
            drain.add_metric(sid, _num(h.get("drain_per_s")))
            delivered.add_metric(sid, _num(h.get("delivered")))
            for state in SCANNER_STATES:
                scanner.add_metric([v.station_id, state], 1.0 if v.scanner_state == state else 0.0)
            if isinstance(h.get("nfiq2_median_today"), int | float):
                nfiq2.add_metric(sid, float(h["nfiq2_median_today"]))
            today.add_metric(sid, _num(h.get("bookings_today")))
            disk_free.add_metric(sid, _num(h.get("disk_free_mb")) * MIB)
            if _num(h.get("disk_total_mb")) > 0:
                disk_size.add_metric(sid, _num(h.get("disk_total_mb")) * MIB)
            clock.add_metric(sid, 1.0 if v.clock_trusted else 0.0)
            paused.add_metric(sid, 1.0 if h.get("uploads_paused") else 0.0)
            signatures.add_metric([v.station_id, "command"],
                                  _num(h.get("command_signature_failures")))
            signatures.add_metric([v.station_id, "receipt"],
                                  _num(h.get("receipt_signature_failures")))
        yield from (online, last_seen, queue, oldest, drain, delivered, scanner, nfiq2, today,
                    disk_free, disk_size, clock, paused, signatures, build, model)


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class ReceiverMetrics:
    """The receiver's own figures; the receiver calls these hooks, Prometheus reads them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.held = Gauge("bst_central_transactions_held", "Transactions central holds.",
                          registry=self.registry)
        self.stored_total = Counter("bst_central_transactions_stored",
                                    "Transactions stored (first deliveries only).",
                                    registry=self.registry)
        self.duplicates = Counter("bst_central_duplicate_deliveries",
                                  "Deliveries of a transaction already held (answered again).",
                                  registry=self.registry)
        self.rejected_total = Counter("bst_central_transactions_rejected",
                                      "Transactions refused, by reason.", ["reason"],
                                      registry=self.registry)
        for reason in RejectReason:
            self.rejected_total.labels(reason.value)
        self.stored_bytes = Counter("bst_central_stored_bytes",
                                    "Bytes of transactions stored.", registry=self.registry)
        self.malformed = Counter("bst_central_malformed_messages",
                                 "Messages on transaction topics that broke the protocol.",
                                 registry=self.registry)
        self.assembly = Histogram(
            "bst_central_assembly_seconds",
            "From a transaction's first message to its bytes stored durably.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry)

    def stored(self, size: int, seconds: float) -> None:
        """A transaction is on disk and indexed."""
        self.stored_total.inc()
        self.stored_bytes.inc(size)
        self.assembly.observe(seconds)

    def rejected(self, reason: RejectReason) -> None:
        """A transaction was refused for good."""
        self.rejected_total.labels(reason.value).inc()

    def duplicate(self) -> None:
        """A transaction already held came again."""
        self.duplicates.inc()

    def malformed_message(self) -> None:
        """A message broke the protocol."""
        self.malformed.inc()
