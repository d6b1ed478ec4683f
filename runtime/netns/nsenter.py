"""Enter a named network namespace (setns), for a whole process or for one socket."""

from __future__ import annotations

import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns into {what}: {os.strerror(errno)}")


def enter_namespace(ns: str) -> None:
    """Move the calling thread (the whole process when it has one thread) into `ns`."""
    fd = os.open(f"{NETNS_RUN_DIR}/{ns}", os.O_RDONLY)
    try:
        _setns(fd, ns)
    finally:
        os.close(fd)


def socket_in(ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM,
              proto: int = 0) -> socket.socket:
    """A socket that lives in namespace `ns`; the calling thread stays where it was.

    A socket keeps the namespace it was created in, so one process can talk inside many.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter_namespace(ns)
        try:
            return socket.socket(family, kind, proto)
        finally:
            _setns(home, "the original namespace")
    finally:
        os.close(home)
