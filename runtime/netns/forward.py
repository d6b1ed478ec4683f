"""Forward the host's loopback ports into the services namespace (like `docker run -p`).

The lab's tools on the host (`dtnlab status`, `fault --via mqtt`, the browser on the API) keep
using runtime.json's 127.0.0.1:<port>; this relay opens each connection from inside the services
namespace (a socket made there) to its 127.0.0.1:<port>, where the broker and the API listen.
Lab traffic never passes through it.

Run: `python -m dtnlab.runtime.netns.forward --netns dtn-<lab>-svc --port 11883 --port 8088`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

from .nsenter import socket_in

log = logging.getLogger(__name__)

CHUNK = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _connect(netns: str | None, target: str, port: int
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if netns is None:
        return await asyncio.open_connection(target, port)
    sock = socket_in(netns)  # the far end's loopback, not ours
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (target, port))
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def relay(netns: str | None, target: str, port: int) -> Handler:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.wait_for(_connect(netns, target, port), 5)
        except (OSError, TimeoutError) as exc:
            log.warning("%s:%d%s unreachable: %s", target, port,
                        f" in {netns}" if netns else "", exc)
            client_w.close()
            return
        _nodelay(client_w)
        _nodelay(server_w)
        await asyncio.gather(_pipe(client_r, server_w), _pipe(server_r, client_w))

    return handle


async def serve(listen: str, netns: str | None, target: str, ports: list[int]) -> None:
    """Forward every port; the first (the broker's) must bind, the others are best effort."""
    servers = []
    for port in ports:
        try:
            servers.append(await asyncio.start_server(relay(netns, target, port), listen, port,
                                                      reuse_address=True))
        except OSError as exc:
            if not servers:
                raise
            log.warning("%s:%d not forwarded: %s", listen, port, exc)
    log.info("forwarding %s:%s -> %s%s", listen, ",".join(map(str, ports)), target,
             f" in namespace {netns}" if netns else "")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dtnlab.runtime.netns.forward",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--netns", help="connect from inside this namespace (root)")
    parser.add_argument("--to", default="127.0.0.1",
                        help="address to connect to (default: %(default)s, in --netns)")
    parser.add_argument("--port", type=int, action="append", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s forward: %(message)s")
    try:
        asyncio.run(serve(args.listen, args.netns, args.to, args.port))
    except OSError as exc:
        log.error("cannot listen: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
