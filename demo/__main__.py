"""``python -m demo``: the whole station on an embedded default (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from appliance.system.config import LoggingSection
from appliance.system.console import exit_code
from appliance.system.logs import setup_logging
from demo.broker import BrokerUnavailable
from demo.run import run_demo


def build_parser() -> argparse.ArgumentParser:
    """The demo's command line, documented in the README."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--bookings", type=int, default=None,
                        help="take N emulated bookings unattended, exit 0 once central holds them")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds allowed for --bookings")
    parser.add_argument("--state-dir", type=Path, default=Path("demo-state"))
    parser.add_argument("--web-port", type=int, default=8080, help="kiosk port (0: any free port)")
    parser.add_argument("--broker", choices=["auto", "existing", "mosquitto"], default="auto",
                        help="auto or mosquitto: a new Mosquitto process on a free port with "
                             "passwords and the production ACL; existing: the broker on "
                             "127.0.0.1:1883 as it is (its own access rules)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the emulated subjects")
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(LoggingSection(level=args.log_level))

    def run() -> int:
        try:
            return asyncio.run(run_demo(args.state_dir, bookings=args.bookings,
                                        timeout_s=args.timeout, web_port=args.web_port,
                                        broker_pref=args.broker, seed=args.seed))
        except BrokerUnavailable as exc:
            print(f"demo: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 0

    return exit_code(run)


if __name__ == "__main__":
    sys.exit(main())
