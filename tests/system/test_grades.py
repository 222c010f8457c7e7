"""Health at a glance: each item graded with a reason a technician can act on."""

from __future__ import annotations

import dataclasses

from appliance.system.grades import Facts, Grade, Item, grade, worst
from appliance.system.health import Health


def reading(**changes) -> Health:
    base = {"station_id": "s", "queue_depth": 0, "oldest_unsent_age_s": None,
            "disk_free_mb": 5000, "scanner_state": "ready", "audit_head": "", "audit_entries": 0,
            "clock": "synchronised", "link_connects": 1, "cpu_temperature_c": 45.0}
    return Health(**{**base, **changes})


FACTS = Facts(link_connected=True, link_configured=True,
              models={"minutiae": "1.2.1", "nfiq2": "nbis-py"}, software_version="0.1.0",
              min_free_mb=500)


def by_key(health: Health, facts: Facts = FACTS) -> dict[str, tuple[Grade, str]]:
    return {i.key: (i.status, i.reason) for i in grade(health, facts)}


def test_a_healthy_station_is_green_everywhere() -> None:
    items = grade(reading(), FACTS)
    assert worst(items) is Grade.GREEN and all(i.reason == "" for i in items)


def test_each_problem_turns_its_item_amber_or_red_with_a_reason() -> None:
    cases = [
        (reading(scanner_state="disconnected"), "scanner", Grade.RED),
        (reading(queue_depth=21), "queue", Grade.AMBER),
        (reading(queue_depth=201), "queue", Grade.RED),
        (reading(oldest_unsent_age_s=2 * 3600), "oldest", Grade.AMBER),
        (reading(oldest_unsent_age_s=2 * 86400), "oldest", Grade.RED),
        (reading(disk_free_mb=1000), "disk", Grade.AMBER),
        (reading(disk_free_mb=100), "disk", Grade.RED),
        (reading(cpu_temperature_c=72.0), "temperature", Grade.AMBER),
        (reading(cpu_temperature_c=85.0), "temperature", Grade.RED),
        (reading(clock="unsynchronised"), "clock", Grade.AMBER),
        (reading(alerts=["store unavailable"]), "alerts", Grade.RED),
    ]
    for health, key, expected in cases:
        status, reason = by_key(health)[key]
        assert status is expected and reason, (key, expected)
        assert worst(grade(health, FACTS)) is expected
    no_link = Facts(False, True, FACTS.models, "0.1.0", 500)
    assert by_key(reading(), no_link)["link"][0] is Grade.AMBER
    no_nfiq = Facts(True, True, {"minutiae": "1"}, "0.1.0", 500)
    assert by_key(reading(), no_nfiq)["nfiq2"][0] is Grade.RED


def test_an_item_as_a_dict_has_every_field() -> None:
    for item in grade(reading(queue_depth=3, oldest_unsent_age_s=90000), FACTS):
        assert item.as_dict() == dataclasses.asdict(item)
        assert set(item.as_dict()) == {f.name for f in dataclasses.fields(Item)}
