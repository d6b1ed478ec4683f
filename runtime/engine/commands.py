"""Commands to devices and their acks, matched by id, with a timeout."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import orjson

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], Any]


class CommandTimeout(TimeoutError):
    """No ack arrived in time."""


class UnknownDevice(KeyError):
    """The device is not a twin of this lab."""


class Commands:
    """Send a command on a device's command topic; its ack on the status topic resolves it.

    Thread-safe: `send` may be called from any thread; `on_ack` and `expire` run in the engine.
    """

    def __init__(self, publish: Publish, command_topics: dict[str, str]) -> None:
        self._publish = publish
        self._topics = command_topics
        self._pending: dict[str, tuple[Future[dict[str, Any]], float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def set_topics(self, command_topics: dict[str, str]) -> None:
        """Replace the device -> command topic map (after a reload of the lab)."""
        self._topics = dict(command_topics)

    def send(self, device: str, command: str, args: dict[str, Any] | None = None,
             timeout: float = 10.0) -> Future[dict[str, Any]]:
        """Publish a command (QoS 1); the future gets the ack, or CommandTimeout.

        The ack is {"id", "device", "command", "result": "ok"|"rejected", "detail", "ts",
        "latency_s"}.
        """
        topic = self._topics.get(device)
        if topic is None:
            raise UnknownDevice(device)
        now = time.time()
        cmd_id = uuid.uuid4().hex
        future: Future[dict[str, Any]] = Future()
        info = {"id": cmd_id, "device": device, "command": command, "sent": now}
        with self._lock:
            self._pending[cmd_id] = (future, now + timeout, info)
        payload = orjson.dumps({"id": cmd_id, "command": command, "args": args or {},
                                "ts": now})
        self._publish(topic, payload, 1)
        return future

    def call(self, device: str, command: str, args: dict[str, Any] | None = None,
             timeout: float = 10.0) -> dict[str, Any]:
        """Send and wait for the ack; raises CommandTimeout."""
        future = self.send(device, command, args, timeout)
        try:
            return future.result(timeout + 1.0)
        except TimeoutError:
            raise CommandTimeout(f"{device}: no ack to {command!r} in {timeout:g}s") from None

    def on_ack(self, device: str, msg: dict[str, Any]) -> bool:
        with self._lock:
            entry = self._pending.pop(str(msg.get("ack")), None)
        if entry is None:
            log.debug("%s: ack %r matches no pending command", device, msg.get("ack"))
            return False
        future, _, info = entry
        result = {"id": info["id"], "device": device, "command": info["command"],
                  "result": msg.get("result"), "detail": msg.get("detail", ""),
                  "ts": msg.get("ts"), "latency_s": time.time() - info["sent"]}
        if not future.done():
            future.set_result(result)
        return True

    def expire(self, now: float) -> None:
        with self._lock:
            late = [k for k, (_, deadline, _) in self._pending.items() if deadline < now]
            entries = [self._pending.pop(k) for k in late]
        for future, _, info in entries:
            if not future.done():
                future.set_exception(CommandTimeout(
                    f"{info['device']}: no ack to {info['command']!r}"))

    @property
    def pending(self) -> int:
        return len(self._pending)
