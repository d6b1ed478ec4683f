"""`python -m dtnlab.runtime api --lab DIR`: serve a lab's API and dashboard with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from ..labfiles import LabFileError
from .settings import PlaceholderSecret, Settings

log = logging.getLogger(__name__)
WS_MAX_MESSAGE = 64 * 1024


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m dtnlab.runtime api",
                                     description="Serve a lab's API and dashboard.")
    parser.add_argument("--lab", required=True, type=Path, help="the lab folder (labs/<lab>)")
    parser.add_argument("--host", help="listen address (default: $DTN_API_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int,
                        help="port (default: $DTN_API_PORT, else runtime.json api.port)")
    args = parser.parse_args(argv)
    import uvicorn

    from .main import create_app

    try:
        settings = Settings()
        app = create_app(args.lab, settings)
    except (LabFileError, PlaceholderSecret, ValidationError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    index = app.state.api.index
    port = args.port or settings.api_port or int(index.api_config.get("port") or 8088)
    host = args.host or settings.api_host
    log.info("api: serving lab %s on http://%s:%d/", index.name, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False,
                ws_max_size=WS_MAX_MESSAGE, proxy_headers=False, server_header=False)
    return 0
