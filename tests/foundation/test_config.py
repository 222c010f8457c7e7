import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import StationConfig, load_config
from appliance.errors import ConfigError, SecretError
from appliance.system.secrets import read_secret

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "appliance" / "examples"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, cwd=REPO)


@pytest.mark.parametrize("name", ["demo.toml", "raspberry-pi.toml"])
def test_example_configs_validate(name: str) -> None:
    result = run_cli("check-config", "--file-only", str(EXAMPLES / name))
    assert result.returncode == 0, result.stderr
    assert "OK, the file alone" in result.stdout


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mqtt]\nhost = "x"\nprot = 1883\n[web]\nport = "eighty"\n')
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert f"{bad}: mqtt.prot: unknown key" in result.stderr
    assert f"{bad}: web.port:" in result.stderr


def test_out_of_range_and_scanner_options_use_the_driver_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mqtt]\nport = 70000\n[scanner]\ntype = "emulated"\nsed = 3\n')
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "mqtt.port:" in result.stderr
    assert "scanner.sed: unknown key" in result.stderr


def test_unknown_driver_type_lists_installed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[scanner]\ntype = "nonesuch"\n')
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "scanner.type" in result.stderr and "emulated" in result.stderr


def test_missing_and_broken_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = run_cli("check-config", str(missing))
    assert result.returncode == 2 and str(missing) in result.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\n")
    result = run_cli("check-config", str(broken))
    assert result.returncode == 2 and "not valid TOML" in result.stderr
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(missing)


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[station]\nstation_id = 'has spaces'\n")
    result = run_cli("run", "--config", str(bad))
    assert result.returncode == 2
    assert "station.station_id" in result.stderr


def test_every_field_has_a_description() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            ann = field.annotation
            for candidate in (ann, *getattr(ann, "__args__", ())):
                if isinstance(candidate, type) and hasattr(candidate, "model_fields"):
                    missing += walk(candidate)
        return missing

    assert walk(StationConfig) == []


def test_secrets_come_from_credentials_or_root_only_files(tmp_path: Path, monkeypatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "db-key").write_bytes(b"k" * 32)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret("db-key") == b"k" * 32
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    loose = tmp_path / "loose.key"
    loose.write_bytes(b"x" * 32)
    os.chmod(loose, 0o644)
    with pytest.raises(SecretError, match="readable by group or others"):
        read_secret("db-key", fallback_file=loose)
    os.chmod(loose, 0o600)
    assert read_secret("db-key", fallback_file=loose) == b"x" * 32
    with pytest.raises(SecretError, match="not found"):
        read_secret("db-key")


def test_toml_has_no_place_for_secrets() -> None:
    fields = str(StationConfig.model_json_schema())
    assert "password\"" not in fields.replace("password_credential", "")


def test_flats_sequence_needs_a_profile_without_rolled_prints(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[capture]\nsequence = "flats"\n[records]\nprofile = "local-tenprint"\n')
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2
    assert "records.profile" in result.stderr and "rolled" in result.stderr
    bad.write_text('[records]\nprofile = "nonesuch"\n')
    result = run_cli("check-config", str(bad))
    assert result.returncode == 2 and "unknown profile" in result.stderr


def test_validate_command_lists_problems_with_record_and_field(tmp_path: Path) -> None:
    source = REPO / "tests" / "fixtures" / "nist" / "ansi_nist" / "type-4-14-slaps.an2"
    good = run_cli("validate", str(source), "--profile", "local-tenprint")
    assert good.returncode in (0, 1), good.stderr
    broken = tmp_path / "broken.an2"
    broken.write_bytes(source.read_bytes()[:300])
    result = run_cli("validate", str(broken))
    assert result.returncode == 1
    assert "record" in result.stdout and "LEN" in result.stdout
    missing = run_cli("validate", str(tmp_path / "none.an2"))
    assert missing.returncode == 2


def test_a_reader_that_leaves_early_gets_an_exit_code_not_a_traceback() -> None:
    """``booking-station check-config FILE | head -c 0``: the one line meets a closed pipe."""
    proc = subprocess.Popen([sys.executable, "-m", "appliance.cli", "check-config",
                             "--file-only", str(EXAMPLES / "demo.toml")], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    try:
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=60)
    finally:
        proc.kill()
    assert rc == 1, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_audit_verify_of_a_named_database_needs_no_config(tmp_path: Path) -> None:
    import asyncio

    from appliance.store.crypto import BlobCipher, new_key
    from appliance.store.store import Store

    async def one_entry() -> None:
        store = Store(tmp_path / "station.db", BlobCipher(new_key()))
        store.open()
        try:
            await store.audit("station", "station_started", {})
        finally:
            store.close()

    asyncio.run(one_entry())
    result = run_cli("audit", "verify", "--database", str(tmp_path / "station.db"),
                     "--config", str(tmp_path / "no-such-config.toml"))
    assert result.returncode == 0, result.stderr
    assert "audit chain OK: 1 entries" in result.stdout


@pytest.mark.parametrize("name", ["raspberry-pi.toml", "x86-kiosk.toml"])
def test_installed_examples_keep_the_kiosk_on_loopback_and_the_technician_on_https(
        name: str) -> None:
    from appliance.web.app import site_policy

    web = load_config(EXAMPLES / name).web
    assert web.host == "127.0.0.1"
    assert web.technician_tls is not None and web.technician_tls.port == 8443
    policy = site_policy(web)
    own = socket.gethostname()
    assert policy.host_allowed(f"{own}.local:8443") and policy.host_allowed(f"{own}:8443")
    assert not policy.host_allowed("rebind.attacker.example:8443")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "kiosk.example"])
def test_the_kiosk_cannot_listen_beyond_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="plain HTTP beyond this machine"):
        StationConfig.model_validate({"web": {"host": host}})
    for own in ("127.0.0.1", "::1", "localhost", "127.0.1.1"):
        assert StationConfig.model_validate({"web": {"host": own}}).web.host == own


def test_the_technicians_https_beyond_loopback_is_warned_about(tmp_path: Path) -> None:
    config = tmp_path / "lan.toml"
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    config.write_text(f'[station]\ndata_dir = "{data}"\n[web]\nhost = "0.0.0.0"\n')
    refused = run_cli("check-config", str(config))
    assert refused.returncode != 0 and "plain HTTP beyond this machine" in refused.stderr
    assert "Traceback" not in refused.stderr
    cert, key = tmp_path / "admin.crt", tmp_path / "admin.key"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                           "/CN=station", "-keyout", str(key), "-out", str(cert)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    tls = f'[web.technician_tls]\nport = 0\ncertificate = "{cert}"\nkey_file = "{key}"\n'
    config.write_text(f'[station]\ndata_dir = "{data}"\n' + tls + 'host = "0.0.0.0"\n')
    result = run_cli("check-config", str(config))  # (no store key here: the machine's errors)
    assert "plain HTTP" not in result.stderr, result.stderr
    assert "warning: web.technician_tls.host: the technician page answers beyond this " \
        "machine, over HTTPS on 0.0.0.0:0" in result.stderr
    config.write_text(f'[station]\ndata_dir = "{data}"\n' + tls + 'host = "127.0.0.1"\n')
    result = run_cli("check-config", str(config))
    assert "web.technician_tls" not in result.stderr, result.stderr
