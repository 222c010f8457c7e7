"""`booking-central` as an integrator runs it: a real process, a real broker, a real station."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from central.receiver import ReceiverStore
from tests.sync.conftest import commit_many
from tests.sync.pki import Pki
from tests.sync.test_tls import central_context  # noqa: F401  (same PKI helpers)

REPO = Path(__file__).resolve().parents[2]


def central(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "central.cli", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_cli_receiver_over_tls_stores_and_stops_cleanly(mosquitto_factory, service_rig,
                                                              tmp_path, central_signing,
                                                              loop_errors) -> None:
    pki = Pki(tmp_path / "pki")
    broker = mosquitto_factory(pki.broker_lines())
    cert, key = pki.issue("central")
    store_dir = tmp_path / "central-cli"
    proc = central("run", "--host", broker.host, "--port", str(broker.port), "--dir",
                   str(store_dir), "--prefix", "bst", "--tls-ca", str(pki.ca_file),
                   "--tls-cert", str(cert), "--tls-key", str(key),
                   "--destination", "State AFIS|identification",
                   "--key", str(central_signing.private))
    try:
        line = await asyncio.to_thread(proc.stdout.readline)
        assert "listening" in line, proc.stderr.read() if proc.poll() is not None else line
        rig = await service_rig(broker.host, broker.port, tls=pki.client_section("st-1"),
                                receiver=False)
        txids, payloads = await commit_many(rig.store, 3, size=40_000)
        rig.service.wake()
        await rig.wait_all_stored(txids)
        receipt = json.loads(rig.store.bookings()[0].receipt)
        assert receipt["shared_with"] == [{"name": "State AFIS", "purpose": "identification",
                                           "mandatory": True}]
        # the operator's command line, signed, against the same station
        answer = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "central.cli", "command", "st-1", "ping", "--host",
             broker.host, "--port", str(broker.port), "--tls-ca", str(pki.ca_file),
             "--tls-cert", str(cert), "--tls-key", str(key), "--key",
             str(central_signing.private)],
            cwd=REPO, capture_output=True, text=True, timeout=30)
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout)["result"]["pong"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=10)
    assert proc.returncode == 0, err
    assert "3 transactions held" in out
    held = ReceiverStore(store_dir)
    try:
        assert set(held.deliveries()) == set(txids)
        for txid, payload in zip(txids, payloads, strict=True):
            assert held.read("st-1", txid) == payload
    finally:
        held.close()


def test_keygen_and_bad_arguments(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "central.cli", "keygen", "--out",
                           str(tmp_path / "k"), "--public", str(tmp_path / "k.pub")],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and (tmp_path / "k").stat().st_mode & 0o077 == 0
    assert b"BEGIN PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    bad = subprocess.run([sys.executable, "-m", "central.cli", "--dir", str(tmp_path),
                          "--tls-ca", str(tmp_path / "k.pub")],
                         cwd=REPO, capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "go together" in bad.stderr
    assert "key id " in done.stdout
    unsigned = subprocess.run([sys.executable, "-m", "central.cli", "--dir", str(tmp_path)],
                              cwd=REPO, capture_output=True, text=True, timeout=30)
    assert unsigned.returncode != 0 and "--key central's signing key is needed" in unsigned.stderr
