"""`python -m dtnlab.runtime SUBCOMMAND`: the runtime's processes, one subcommand each."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

# Each entry imports its module only when run: an emulator process should not pay for
# FastAPI (measured: importing every subcommand took 3.0 s here, the emulator's own 1.1 s).


def _api(argv: list[str]) -> int:
    from .api import cli

    return cli.main(argv)


def _emulator(argv: list[str]) -> int:
    from .emulator import cli

    return cli.main(argv)


def _engine(argv: list[str]) -> int:
    from .engine import cli

    return cli.main(argv)


def _supervise(argv: list[str]) -> int:
    from .providers import supervisor

    return supervisor.main(argv)


SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "api": _api,
    "emulator": _emulator,
    "engine": _engine,
    "supervise": _supervise,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SUBCOMMANDS:
        sys.stderr.write(f"usage: python -m dtnlab.runtime {{{','.join(SUBCOMMANDS)}}} ...\n")
        return 2
    logging.basicConfig(level=os.environ.get("DTN_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return SUBCOMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
