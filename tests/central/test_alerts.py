"""central/alerts.yml: valid for Prometheus, every rule tested on synthetic series by promtool,
and every metric it reads is one the exporters serve."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO

RULES = REPO / "central" / "alerts.yml"
CASES = REPO / "tests" / "central" / "alerts_test.yml"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed; CI must install it (tools/system-deps.sh)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def test_promtool_checks_the_rules() -> None:
    result = run("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run("test", "rules", str(CASES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_cases_firing_and_quiet() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    cases = yaml.safe_load(CASES.read_text())["tests"]
    firing = {c["alertname"] for t in cases for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in cases for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert alerts == firing == quiet


def test_rules_read_only_metrics_the_exporters_serve() -> None:
    served = (REPO / "central" / "metrics.py").read_text()
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            for name in re.findall(r"\bbst_[a-z0-9_]+", rule["expr"]):
                base = name.removesuffix("_total")
                assert f'"{base}"' in served, f"{rule['alert']} reads {name}, which no one serves"
