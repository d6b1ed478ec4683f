"""`python -m dtnlab.runtime engine --lab DIR`: run the twin engine of a generated lab."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from ..labfiles import LabFileError, load_lab
from .engine import Engine, EngineConfig

log = logging.getLogger(__name__)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dtnlab.runtime engine",
                                     description="Run the twin engine of a generated lab.")
    parser.add_argument("--lab", required=True, type=Path, help="the lab folder (labs/<lab>)")
    parser.add_argument("--tls", action="store_true", help="connect to the broker's TLS port")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: $DTN_DATABASE_URL, "
                                               "else SQLite in <lab>/run/)")
    parser.add_argument("--aggregate-period", type=float, default=5.0,
                        help="seconds between aggregate publications (default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        lab = load_lab(args.lab)
    except LabFileError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    from ..storage import DatabaseSettingError, open_store

    try:
        store = open_store(lab.run_dir, args.database_url)
    except DatabaseSettingError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    engine = Engine(lab, EngineConfig(tls=args.tls, aggregate_period_s=args.aggregate_period),
                    store=store)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("engine: signal %d, stopping", signum)
        engine.request_stop()

    def on_reload(signum: int, frame: FrameType | None) -> None:
        try:
            plan = engine.reload()
        except LabFileError as exc:
            log.error("engine: SIGHUP: the lab folder is not readable, nothing "
                      "changed: %s", exc)
        else:
            log.info("engine: SIGHUP: %s", "; ".join(plan.lines()) or "no twin changed")

    signal.signal(signal.SIGHUP, on_reload)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    engine.run_forever()
    return 0
