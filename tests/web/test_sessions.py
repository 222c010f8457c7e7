"""Sessions, lockout and password hashes: the parts the sign-in pages are built from."""

from __future__ import annotations

import time

import pytest
from fastapi import Depends, FastAPI, Response
from fastapi.testclient import TestClient

from appliance.web.auth import (
    Locked,
    Lockout,
    hash_password,
    hash_pbkdf2,
    needs_rehash,
    parse_logins,
    verify_password,
)
from appliance.web.sessions import Role, Session, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def app_with(store: SessionStore) -> FastAPI:
    app = FastAPI()
    technician = Depends(store.require([Role.TECHNICIAN]))
    auditor = Depends(store.require([Role.AUDITOR]))

    @app.post("/login/{name}")
    def login(name: str, response: Response) -> dict[str, str]:
        session = store.create(name, Role.TECHNICIAN)
        store.set_cookie(response, session)
        return {"csrf": session.csrf}

    @app.get("/who")
    def who(session: Session = technician) -> dict[str, str]:
        return {"user": session.user}

    @app.post("/act")
    def act(session: Session = technician) -> dict[str, str]:
        return {"user": session.user}

    @app.get("/audit")
    def audit(session: Session = auditor) -> dict[str, str]:
        return {"user": session.user}

    return app


def test_a_session_lives_by_its_cookie_and_dies_by_its_clocks() -> None:
    clock = Clock()
    store = SessionStore(cookie="tech", idle_s=1800, absolute_s=12 * 3600, secure=False,
                         clock=clock)
    client = TestClient(app_with(store))
    assert client.get("/who").status_code == 401
    login = client.post("/login/ana")
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    csrf = login.json()["csrf"]
    assert client.get("/who").json() == {"user": "ana"}
    assert client.post("/act").status_code == 403  # no CSRF token
    assert client.post("/act", headers={"X-CSRF-Token": "guess"}).status_code == 403
    assert client.post("/act", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client.get("/audit").status_code == 403  # a technician is not an auditor
    clock.now += 1799
    assert client.get("/who").status_code == 200  # activity keeps it alive
    for _ in range(30):
        clock.now += 1700
        if clock.now - 1000 > 12 * 3600:
            break
        assert client.get("/who").status_code == 200
    assert client.get("/who").status_code == 401  # the absolute lifetime ended it
    client.post("/login/ana")
    clock.now += 1801
    assert client.get("/who").status_code == 401  # idle


def test_a_forged_or_foreign_cookie_names_no_session() -> None:
    store = SessionStore(cookie="tech", idle_s=60, absolute_s=600, secure=True)
    other = SessionStore(cookie="tech", idle_s=60, absolute_s=600, secure=True)
    client = TestClient(app_with(store), base_url="https://127.0.0.1")
    login = client.post("/login/ana")
    assert "secure" in login.headers["set-cookie"].lower()
    raw = client.cookies["tech"]
    sid = raw.rsplit(".", 1)[0]
    for forged in (sid, sid + ".AAAA", "x" * 40):
        client.cookies.set("tech", forged)
        assert client.get("/who").status_code == 401
    foreign = TestClient(app_with(other), base_url="https://127.0.0.1")
    foreign.cookies.set("tech", raw)  # signed by another station's key
    assert foreign.get("/who").status_code == 401


def test_lockout_after_five_failures_per_key_for_ten_minutes() -> None:
    clock = Clock()
    lockout = Lockout(limit=5, lock_s=600, clock=clock)
    for _ in range(4):
        assert lockout.failure("user:ana", "addr:10.0.0.9") == []
        lockout.check("user:ana")
    assert lockout.failure("user:ana", "addr:10.0.0.9") == ["user:ana", "addr:10.0.0.9"]
    with pytest.raises(Locked) as caught:
        lockout.check("user:bo", "addr:10.0.0.9")  # the address is locked for every name
    assert caught.value.key == "addr:10.0.0.9"
    clock.now += 599
    with pytest.raises(Locked):
        lockout.check("user:ana")
    clock.now += 2
    lockout.check("user:ana", "addr:10.0.0.9")
    lockout.failure("user:ana")
    lockout.success("user:ana")
    for _ in range(4):
        lockout.failure("user:ana")
    lockout.check("user:ana")  # a success cleared the earlier failure


def test_argon2id_hashes_and_the_pbkdf2_upgrade_path() -> None:
    fresh = hash_password("correct horse")
    assert fresh.startswith("$argon2id$") and not needs_rehash(fresh)
    assert verify_password("correct horse", fresh)
    assert not verify_password("wrong", fresh)
    old = hash_pbkdf2("battery staple", iterations=1000)
    assert verify_password("battery staple", old) and needs_rehash(old)
    assert not verify_password("battery", old)
    assert not verify_password("anything", None)
    assert not verify_password("x", "garbage") and not verify_password("x", "pbkdf2_sha256$1")


def test_an_unknown_name_costs_what_a_wrong_password_costs() -> None:
    """Told apart by timing no longer: the decoy is an argon2id hash of the same cost."""
    known = hash_password("pw")
    started = time.process_time()
    for _ in range(5):
        verify_password("guess", known)
    wrong_cpu = time.process_time() - started
    started = time.process_time()
    for _ in range(5):
        verify_password("guess", None)
    unknown_cpu = time.process_time() - started
    # the same work, not a timing assertion: both run five argon2id verifications
    assert unknown_cpu > wrong_cpu / 4 and wrong_cpu > unknown_cpu / 4


def test_logins_lines_with_and_without_a_role() -> None:
    text = f"# technicians\nana:{hash_password('a')}\nbo:auditor:{hash_pbkdf2('b')}\n\nbad line\n"
    logins = parse_logins(text, default_role="technician")
    assert logins["ana"].role == "technician" and logins["bo"].role == "auditor"
    assert verify_password("b", logins["bo"].hash)
    assert set(logins) == {"ana", "bo"}
