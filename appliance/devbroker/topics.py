"""Topic names and topic filters for the embedded broker (MQTT 5.0 section 4.7).

Kept apart from the broker so the wildcard rules, the easiest part of a broker to get subtly
wrong, can be tested as plain functions.
"""

from __future__ import annotations


def is_valid_topic_name(name: str) -> bool:
    """A PUBLISH topic: non-empty, no wildcard characters (4.7.3)."""
    return bool(name) and "+" not in name and "#" not in name


def is_valid_topic_filter(topic_filter: str) -> bool:
    """A SUBSCRIBE filter: ``#`` only as the whole last level, ``+`` only as a whole level."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def is_shared_subscription(topic_filter: str) -> bool:
    """True for ``$share/...`` filters, which this broker does not offer (4.8.2)."""
    return topic_filter.startswith("$share/")


def topic_matches(topic_filter: str, name: str) -> bool:
    """Whether topic ``name`` matches ``topic_filter``.

    A filter starting with a wildcard does not match names starting with ``$`` (4.7.2), so
    ``#`` does not see ``$SYS/...``.
    """
    if name.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    name_levels = name.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True  # also matches the parent level: "a/#" matches "a" (4.7.1.2)
        if i >= len(name_levels):
            return False
        if level != "+" and level != name_levels[i]:
            return False
    return len(filter_levels) == len(name_levels)
