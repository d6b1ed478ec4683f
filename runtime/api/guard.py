"""ASGI middleware in front of every route: rate limits, body size limit, security headers."""

from __future__ import annotations

import hashlib
import math
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body
from .ratelimit import RateLimiter
from .settings import Settings
from .timing import RequestTimes

LOGIN_PATH = "/auth/token"
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
     b"style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
]
# Static files that browsers may cache (the dashboard's and Swagger UI's); nothing else.
CACHEABLE_PATHS = ("/dashboard/", "/docs/assets/")


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class Limits:
    """The rate limiters and body size limit of one app, and how often they said no."""

    def __init__(self, settings: Settings) -> None:
        self.max_body = settings.max_body_bytes
        self.by_client = RateLimiter(settings.rate_per_s, settings.rate_burst)
        self.by_token = RateLimiter(settings.token_rate_per_s, settings.token_rate_burst)
        self.logins = RateLimiter(settings.login_rate_per_s, settings.login_burst)
        self.limited = 0
        self.times = RequestTimes()

    def wait(self, scope: Scope) -> float:
        """0.0 when the request may go on, else seconds until it may."""
        client = scope.get("client")
        address = client[0] if client else "unknown"
        wait = self.by_client.hit(address)
        if not wait and scope["type"] == "http" and scope["path"] == LOGIN_PATH and (
                scope["method"] == "POST"):
            wait = self.logins.hit(address)
        token = _bearer(scope) if not wait else None
        if token:
            wait = self.by_token.hit(hashlib.sha256(token.encode()).hexdigest()[:32])
        if wait:
            self.limited += 1
        return wait


class Guard:
    """Rejects before routing: 429 (with Retry-After) past a client's, a token's or the login
    rate; 413 past the body size limit, announced or streamed. Adds security headers."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self.max_body = limits.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        wait = self.limits.wait(scope)
        if wait:
            await self._reject(scope, receive, send, 429, "too many requests; retry later",
                               {"retry-after": str(max(1, math.ceil(wait)))})
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and length > self.max_body:
            await self._reject(scope, receive, send, 413, self._too_large())
            return
        started = rejected = False
        seen = 0
        status = 500
        began = time.perf_counter()

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body and not started:
                    # Answer now; the app sees the client gone and its response is dropped.
                    rejected = True
                    await self._reject(scope, receive, send, 413, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = list(message.get("headers", [])) + SECURITY_HEADERS
                if scope["path"] != "/" and not scope["path"].startswith(CACHEABLE_PATHS):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.limits.times.observe(scope["method"], route, 413 if rejected else status,
                                      time.perf_counter() - began)

    def _too_large(self) -> str:
        return f"request body over {self.max_body} bytes"

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, status: int, message: str,
                      headers: dict[str, str] | None = None) -> None:
        body = error_body(status, message)
        raw: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]
        raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            # Denied before the handshake: an HTTP response when the server can send one.
            if "websocket.http.response" in scope.get("extensions", {}):
                await send({"type": "websocket.http.response.start", "status": status,
                            "headers": raw})
                await send({"type": "websocket.http.response.body", "body": body})
            else:
                await send({"type": "websocket.close", "code": 4000 + status})
            return
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
