"""WCAG 2.1 AA checks of a page with axe-core (the copy bundled by axe-playwright-python)."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.async_playwright import Axe

WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
           "resultTypes": ["violations"]}


async def serious_violations(page: Any) -> list[str]:
    """``rule: target`` for every serious or critical WCAG 2.1 AA violation on the page."""
    results = await Axe().run(page, options=WCAG_AA)
    return [f"{v['id']}: {node['target']}"
            for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
            for node in v["nodes"]]
