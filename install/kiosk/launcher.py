#!/usr/bin/python3
"""The kiosk screen: Chromium in kiosk mode on the station's kiosk page, or a clear message.

booking-station-kiosk.service runs this under cage (one full-screen Wayland window, no
desktop). This process watches the station's health address. While the station does not
answer, Chromium shows station-down.html, a local page that says so in plain words; once it
answers, Chromium is restarted on the kiosk page; when it stops answering (a crash, a restart,
an upgrade), Chromium is restarted on the message page again. So the screen never shows a
browser error, whatever the station does, and the page itself needs no network access (the
station's pages are not meant to be read by a local file, and its headers say so).

Standard library only: it runs on the system's Python, apart from the station's venv.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

log = logging.getLogger("booking-station-kiosk")

HERE = Path(__file__).resolve().parent
#: Chromium flags for a kiosk: one window, nothing to dismiss, nothing kept on the card.
KIOSK_FLAGS = (
    "--kiosk", "--no-first-run", "--noerrdialogs", "--disable-infobars",
    "--disable-session-crashed-bubble", "--disable-translate", "--disable-features=Translate",
    "--disable-pinch", "--overscroll-history-navigation=0", "--password-store=basic",
    "--check-for-update-interval=31536000", "--disk-cache-size=1", "--incognito",
)


def station_urls(config: Path | None, url: str | None) -> tuple[str, str]:
    """The kiosk page and health addresses: from ``url``, else from the station's config."""
    if url is None:
        web: dict = {}
        if config is not None and config.exists():
            web = tomllib.loads(config.read_text(encoding="utf-8")).get("web", {})
        host = str(web.get("host", "127.0.0.1"))
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        url = f"http://{host}:{int(web.get('port', 8080))}/"
    return url, urllib.parse.urljoin(url, "/api/health")


def station_answers(health_url: str, timeout_s: float = 3.0) -> bool:
    """True when the station's web server answers its health address at all."""
    try:
        with urllib.request.urlopen(health_url, timeout=timeout_s) as response:
            return 200 <= response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


class Screen:
    """One Chromium process showing the message page, replaced when the station goes away."""

    def __init__(self, browser: str, kiosk_url: str, profile: Path,
                 extra_args: list[str]) -> None:
        self.message_url = (HERE / "station-down.html").as_uri()
        self.kiosk_url = kiosk_url
        self.browser = browser
        self.profile = profile
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    def show(self, station_up: bool) -> None:
        """Chromium on the kiosk page (the station answers) or on the message page."""
        self.stop()
        url = self.kiosk_url if station_up else self.message_url
        args = [self.browser, *KIOSK_FLAGS, f"--user-data-dir={self.profile}",
                "--ozone-platform-hint=auto", *self.extra_args, url]
        log.info("showing %s", "the kiosk page" if station_up else "the message page")
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)

    def stop(self) -> None:
        """End Chromium (politely, then not)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def exited(self) -> int | None:
        """Chromium's exit status once it has exited, else None."""
        return None if self.process is None else self.process.poll()


def watch(screen: Screen, health_url: str, poll_s: float, misses_for_down: int) -> int:
    """Keep the screen right until Chromium itself exits; returns its exit status."""
    station_up = station_answers(health_url)
    screen.show(station_up)
    misses = 0
    while True:
        code = screen.exited()
        if code is not None:
            log.warning("the browser exited (status %s)", code)
            return code if code else 1
        if station_answers(health_url):
            misses = 0
            if not station_up:
                log.info("the station answers")
                station_up = True
                screen.show(True)
        elif station_up:
            misses += 1
            if misses >= misses_for_down:
                log.warning("the station stopped answering")
                station_up, misses = False, 0
                screen.show(False)
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    """Run the screen until Chromium exits or the service is stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("/etc/booking-station/config.toml"),
                        help="the station's config (its [web] host and port)")
    parser.add_argument("--url", help="the kiosk page (default: from the config)")
    parser.add_argument("--browser", default="chromium")
    parser.add_argument("--profile", type=Path,
                        default=Path(os.environ.get("HOME", "/run/booking-kiosk")) / "profile")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between health checks")
    parser.add_argument("--misses", type=int, default=3,
                        help="health checks missed in a row before the station counts as down")
    parser.add_argument("--browser-arg", action="append", default=[],
                        help="one more Chromium flag (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    kiosk_url, health_url = station_urls(args.config, args.url)
    screen = Screen(args.browser, kiosk_url, args.profile, args.browser_arg)

    def stop(signum: int, _frame: object) -> None:
        screen.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return watch(screen, health_url, args.poll, args.misses)
    finally:
        screen.stop()


if __name__ == "__main__":
    sys.exit(main())
