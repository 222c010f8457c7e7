"""check-config is the gate: what `run` would crash on is refused first, with the key's path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.store.crypto import new_key

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, str]:
    """A prepared machine: a store key credential and a private data folder."""
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "booking-station-db-key").write_text(new_key().hex())
    os.chmod(creds / "booking-station-db-key", 0o600)
    (tmp_path / "data").mkdir(mode=0o700)
    return {**os.environ, "CREDENTIALS_DIRECTORY": str(creds)}


def check(tmp_path: Path, env: dict[str, str], toml: str, *command: str
          ) -> subprocess.CompletedProcess[str]:
    """``booking-station check-config FILE`` (or ``*command FILE``) on a config ending in toml."""
    path = tmp_path / "config.toml"
    path.write_text(f'[station]\ndata_dir = "{tmp_path / "data"}"\n' + toml)
    argv = [*(command or ("check-config",)), str(path)]
    return subprocess.run([sys.executable, "-m", "appliance.cli", *argv], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=300)


def test_a_prepared_machine_passes(tmp_path: Path, machine: dict[str, str]) -> None:
    result = check(tmp_path, machine, "")
    assert result.returncode == 0, result.stderr
    assert "OK, file and machine" in result.stdout


@pytest.mark.parametrize(("toml", "key", "reason"), [
    ("[store]\nbiometric_grace_hours = inf\n", "store.biometric_grace_hours", "finite"),
    ("[store]\nbiometric_grace_hours = nan\n", "store.biometric_grace_hours", "finite"),
    ("[store]\nbiometric_grace_hours = 1e300\n", "store.biometric_grace_hours", "less than"),
    ("[mqtt]\nack_timeout_s = -inf\n", "mqtt.ack_timeout_s", ""),
    ("[mqtt]\nreconnect_min_s = 60\nreconnect_max_s = 1\n", "mqtt", "reconnect_min_s"),
    ("[web]\nhost = \"no-such-host.invalid\"\n", "web.host", "beyond this machine"),
    ("[mqtt.tls]\nca_file = \"/nowhere/ca.pem\"\ncert_file = \"/nowhere/c.pem\"\n"
     "key_file = \"/nowhere/k.pem\"\n", "mqtt.tls", "CA file"),
    ("[mqtt]\ncentral_keys = [\"/nowhere/central.pub\"]\n", "mqtt.central_keys[0]",
     "cannot read"),
    ("[scanner]\ntype = \"emulated\"\ncapture_latency_s = nan\n", "scanner.capture_latency_s",
     "finite"),
])
def test_what_run_would_crash_on_is_refused(tmp_path: Path, machine: dict[str, str], toml: str,
                                            key: str, reason: str) -> None:
    result = check(tmp_path, machine, toml)
    assert result.returncode == 2, result.stdout
    line = next((x for x in result.stderr.splitlines() if f": {key}" in x), "")
    assert line and reason in line, result.stderr
    assert "Traceback" not in result.stderr


def test_data_dir_must_be_a_private_writable_folder(tmp_path: Path,
                                                    machine: dict[str, str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    config = tmp_path / "c.toml"
    for data_dir, reason in ((a_file, "not a folder"),
                             (a_file / "below", "cannot be created"),
                             (Path("/proc/self/new-store"), "cannot be created")):
        config.write_text(f'[station]\ndata_dir = "{data_dir}"\n')
        result = subprocess.run([sys.executable, "-m", "appliance.cli", "check-config",
                                 str(config)], capture_output=True, text=True, env=machine,
                                cwd=REPO, timeout=300)
        assert result.returncode == 2 and "station.data_dir" in result.stderr, result.stderr
        assert reason in result.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    config.write_text(f'[station]\ndata_dir = "{shared}"\n')
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "check-config", str(config)],
                            capture_output=True, text=True, env=machine, cwd=REPO, timeout=300)
    assert result.returncode == 2 and "can be read by others" in result.stderr


def test_a_missing_store_key_is_named(tmp_path: Path, machine: dict[str, str]) -> None:
    env = {**machine, "CREDENTIALS_DIRECTORY": str(tmp_path / "empty")}
    result = check(tmp_path, env, "")
    assert result.returncode == 2 and "store.key_credential" in result.stderr


def test_deep_nesting_and_huge_files_are_refused_not_crashed(tmp_path: Path,
                                                           machine: dict[str, str]) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "check-config", str(deep)],
                            capture_output=True, text=True, env=machine, cwd=REPO, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nested too deeply" in result.stderr or "not valid TOML" in result.stderr
    huge = tmp_path / "huge.toml"
    huge.write_text("# " + "x" * (2 * 1024 * 1024) + "\n")
    result = subprocess.run([sys.executable, "-m", "appliance.cli", "check-config", str(huge)],
                            capture_output=True, text=True, env=machine, cwd=REPO, timeout=300)
    assert result.returncode == 2 and "not a config file" in result.stderr


def test_run_refuses_what_check_config_refuses_without_a_traceback(
        tmp_path: Path, machine: dict[str, str]) -> None:
    result = check(tmp_path, machine, "[web]\nhost = \"no-such-host.invalid\"\n", "run",
                   "--config")
    assert result.returncode == 2
    assert "web.host" in result.stderr and "Traceback" not in result.stderr


def test_an_unresolvable_broker_is_a_warning(tmp_path: Path, machine: dict[str, str]) -> None:
    result = check(tmp_path, machine, "[mqtt]\nhost = \"central.invalid\"\n")
    assert result.returncode == 0, result.stderr
    assert "warning: mqtt.host" in result.stderr


def test_trusting_unsigned_acks_or_commands_is_said_out_loud(tmp_path: Path,
                                                             machine: dict[str, str]) -> None:
    result = check(tmp_path, machine, "")
    assert result.returncode == 0, result.stderr
    assert "warning: mqtt.central_keys: no central public key" in result.stderr
    result = check(tmp_path, machine, "[mqtt]\nallow_unsigned_acks = true\n"
                   "allow_unsigned_commands = true\n")
    assert result.returncode == 0, result.stderr
    assert "warning: mqtt.allow_unsigned_acks: unsigned acks are applied" in result.stderr
    assert "warning: mqtt.allow_unsigned_commands: unsigned commands are obeyed" in result.stderr
    from central.commands import write_keypair

    write_keypair(tmp_path / "central.key", tmp_path / "central.pub")
    result = check(tmp_path, machine, f'[mqtt]\ncentral_keys = ["{tmp_path / "central.pub"}"]\n'
                   "allow_unsigned_commands = true\n")
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    result = check(tmp_path, machine, f'[mqtt]\ncentral_keys = ["{tmp_path / "central.key"}"]\n')
    assert result.returncode == 2 and "mqtt.central_keys[0]" in result.stderr
