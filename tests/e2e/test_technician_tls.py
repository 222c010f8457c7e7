"""HTTPS for the technician page on the LAN; the kiosk is not served there."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from pathlib import Path

import httpx

from appliance.cli import main
from appliance.web.tls import fingerprint


def peer_fingerprint(port: int, cafile: Path) -> str:
    context = ssl.create_default_context(cafile=str(cafile))
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


async def test_the_technician_page_over_https_and_its_fingerprint(station_rig, tmp_path,
                                                                  capsys) -> None:
    cert, key = tmp_path / "tls" / "technician.crt", tmp_path / "tls" / "technician.key"
    config = tmp_path / "tls.toml"
    config.write_text(f'[web]\nserver_names = ["127.0.0.1", "station-7.local"]\n'
                      f'[web.technician_tls]\nhost = "127.0.0.1"\nport = 0\n'
                      f'certificate = "{cert}"\nkey_file = "{key}"\n')
    assert main(["tls", "--config", str(config), "--generate"]) == 0
    printed = capsys.readouterr().out
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    rig = await station_rig(web={"technician_tls": {"host": "127.0.0.1", "port": 0,
                                                    "certificate": str(cert),
                                                    "key_file": str(key)}})
    port = rig.station.tls_port
    assert port and port != rig.station.web_port
    served = await asyncio.to_thread(peer_fingerprint, port, cert)
    assert served == fingerprint(cert) and served in printed  # what the technician compares

    base = f"https://127.0.0.1:{port}"
    verify = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(base_url=base, verify=verify, timeout=120,
                                 headers={"Origin": base}) as tech:
        assert (await tech.get("/admin/login")).status_code == 200
        for kiosk in ("/", "/api/kiosk", "/static/kiosk.js"):
            assert (await tech.get(kiosk)).status_code == 404, kiosk
        login = await tech.post("/api/admin/login",
                                json={"user": "tech", "password": rig.password})
        assert login.status_code == 200
        assert "secure" in login.headers["set-cookie"].lower()
        assert (await tech.get("/api/admin/health")).status_code == 200
    # the kiosk's own listener stays plain HTTP on loopback
    async with httpx.AsyncClient(timeout=60) as kiosk:
        answer = await kiosk.get(f"http://127.0.0.1:{rig.station.web_port}/")
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
