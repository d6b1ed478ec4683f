"""Run a function in a forked copy of this process and take its result back through a pipe.

The copy shares the parent's memory copy-on-write, so a big Lab goes in without being
serialised; only the result travels, pickled. Used by render_lab to put the second core to work.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    """True when forking is safe: POSIX, and no other thread that could hold a lock at the fork."""
    return hasattr(os, "fork") and threading.active_count() == 1


class Gate:
    """A one-shot go from the parent to a forked child: made before the fork, `wait()` in the
    child, `open()` in the parent. A parent that dies or never opens it lets `wait()` say no."""

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._opened = False

    def wait(self) -> bool:
        os.close(self._write_fd)
        with os.fdopen(self._read_fd, "rb") as pipe:
            return pipe.read(1) == b"1"

    def open(self, go: bool = True) -> None:
        """Let the child go on (or, with `go` False, tell it to stop); the first call counts."""
        if self._opened:
            return
        self._opened = True
        os.close(self._read_fd)
        with os.fdopen(self._write_fd, "wb") as pipe:
            pipe.write(b"1" if go else b"0")


class Forked(Generic[T]):
    """`work()` running in a forked child; `result()` waits for it, `discard()` abandons it.

    Should the child fail in any way, `result()` runs `work()` here instead, so an error is
    raised in this process with its real traceback (and a child killed from outside costs time,
    not the result).
    """

    def __init__(self, work: Callable[[], T]) -> None:
        self._work = work
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            _child(work, read_fd, write_fd)
        os.close(write_fd)
        self._pid = pid
        self._status: int | None = None  # the child's wait status, once reaped
        # Read as the child writes, so it never waits on a full pipe for the result to be asked.
        self._received: list[bytes] = []
        self._reader = threading.Thread(target=self._receive, args=(read_fd,), daemon=True)
        self._reader.start()

    def _receive(self, read_fd: int) -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            self._received.append(pipe.read())

    def result(self) -> T:
        self._reap()
        if self._status != 0:
            return self._work()
        done: T = pickle.loads(self._received[0])  # noqa: S301 - our own child, our own pipe
        return done

    def discard(self) -> None:
        """Stop the child unless it is done already; its result, if any, is dropped."""
        if self._status is None:
            os.kill(self._pid, signal.SIGKILL)
            self._reap()

    def _reap(self) -> None:
        if self._status is None:
            self._reader.join()
            self._status = os.waitpid(self._pid, 0)[1]


def _child(work: Callable[[], object], read_fd: int, write_fd: int) -> None:
    """The child's whole life: work, send, and exit without the parent's exit handlers."""
    status = 1
    try:
        os.close(read_fd)
        with os.fdopen(write_fd, "wb") as pipe:
            pickle.dump(work(), pipe, pickle.HIGHEST_PROTOCOL)
        status = 0
    finally:
        os._exit(status)
