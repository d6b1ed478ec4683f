"""A NetBox REST client: pynetbox over a retrying, timing-out, request-counting Session."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlencode

import pynetbox
import requests
from pynetbox.core.query import ContentError, Request, RequestError
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

MIN_VERSION = (4, 0)
# NetBox's default MAX_PAGE_SIZE; a server with a lower ceiling returns shorter pages, which
# the readers detect from the first page.
PAGE_SIZE = 1000
# gunicorn refuses request lines over 4094 bytes (HTTP 414 elsewhere); id filters are chunked
# so that a query string stays well below that.
MAX_QUERY_CHARS = 1800
T = TypeVar("T")
NetBoxObject = dict[str, Any]


class NetBoxError(Exception):
    """NetBox cannot be used as asked (unreachable, token refused, too old, empty selection).

    The CLI prints the message and exits with `exit_code`.
    """

    exit_code = 3

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status when NetBox answered, for callers that recover
        self.body = body


class _Retry(Retry):
    """A POST is never replayed after a read error or a 5xx (NetBox may have applied it); a
    refused connection, a 429 or a 503 means nothing was done, so those are retried for it too."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in (429, 503) and self.total:
            return True
        return bool(super().is_retry(method, status_code, has_retry_after))


class _CountingAdapter(HTTPAdapter):
    """Applies a default timeout to every request and counts what goes over the wire."""

    def __init__(self, timeout: float, counter: Callable[[], None], **kwargs: Any) -> None:
        self.timeout = timeout
        self.counter = counter
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self.counter()
        return super().send(request, **kwargs)


class NetBoxClient:
    """pynetbox's API object on a Session with retries and backoff on 429/5xx and lost connections.

    Args:
        url: NetBox base URL (without /api).
        token: API token, v1 (40 hex) or v2 (`nbt_<key>.<secret>`).
        verify: verify the server's TLS certificate (on by default).
        ca_file: a PEM bundle to verify it with, for a private CA.
        timeout: seconds to wait for a connection or for an answer.
        retries: attempts after the first on 429/5xx and connection errors.
        workers: the largest number of requests in flight (sizes the connection pool).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        verify: bool = True,
        ca_file: str | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        workers: int = 4,
    ) -> None:
        if not url:
            raise NetBoxError("no NetBox URL: set NETBOX_URL or pass --netbox-url")
        if not token:
            raise NetBoxError("no NetBox API token: set NETBOX_TOKEN or pass --netbox-token")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._lock = threading.Lock()
        self.requests = 0
        self.api = pynetbox.api(self.url, token=token)
        self.token = token
        session = requests.Session()
        # A refused connection fails after ~1 s (NetBox is down, not busy); 429 and 5xx answers
        # are retried with backoff (0.5, 1, 2, 4 s), honouring Retry-After.
        retry = _Retry(
            total=retries, connect=min(retries, 2), read=retries, status=retries,
            backoff_factor=0.5, backoff_max=10,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "PATCH", "PUT", "DELETE"}),
            respect_retry_after_header=True, raise_on_status=False,
        )
        adapter = _CountingAdapter(timeout, self._count, max_retries=retry,
                                   pool_connections=2, pool_maxsize=max(workers, 2))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        session.verify = ca_file if (verify and ca_file) else verify
        session.trust_env = False  # an inherited proxy must not capture a loopback NetBox
        self.session = session
        self.api.http_session = session

    def _count(self) -> None:
        with self._lock:
            self.requests += 1

    # -- errors ------------------------------------------------------------------------------
    def call(self, what: str, func: Callable[[], T]) -> T:
        """Run one request, turning transport and HTTP failures into a NetBoxError."""
        try:
            return func()
        except RequestError as exc:
            raise self._http_error(what, exc) from None
        except ContentError:
            raise NetBoxError(f"{self.url} answered {what} with something that is not JSON: "
                              "is this NetBox's URL?") from None
        except requests.exceptions.SSLError as exc:
            raise NetBoxError(f"TLS verification of {self.url} failed ({_reason(exc)}); pass "
                              "--ca-file with the CA that signed NetBox's certificate, or "
                              "--no-verify for a lab instance") from None
        except requests.exceptions.Timeout:
            raise NetBoxError(f"NetBox at {self.url} did not answer {what} within "
                              f"{self.timeout:g} s") from None
        except requests.exceptions.ConnectionError as exc:
            raise NetBoxError(f"cannot reach NetBox at {self.url}: {_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise NetBoxError(f"request to NetBox at {self.url} failed: {exc}") from None

    def _http_error(self, what: str, exc: RequestError) -> NetBoxError:
        status = exc.req.status_code
        detail = _detail(exc.req)
        try:
            body = exc.req.json()
        except ValueError:
            body = None
        if status in (401, 403):
            message = (f"NetBox at {self.url} refused the API token (HTTP {status}: {detail}); "
                       "check NETBOX_TOKEN and the token's permissions")
        elif status == 404:
            message = f"NetBox at {self.url} has no {what} (HTTP 404); is this a NetBox 4 API?"
        elif status == 414:
            message = f"NetBox refused {what}: the request line is too long (HTTP 414)"
        else:
            message = f"NetBox refused {what} (HTTP {status}): {detail}"
        return NetBoxError(message, status, body)

    # -- reads -------------------------------------------------------------------------------
    def endpoint_url(self, endpoint: str) -> str:
        app, name = endpoint.split(".", 1)
        return f"{self.api.base_url}/{app}/{name}/"

    def _request(self, endpoint: str, params: dict[str, Any] | None = None,
                 limit: int | None = None, offset: int | None = None) -> Request:
        return Request(base=self.endpoint_url(endpoint), http_session=self.session,
                       filters=params or None, limit=limit, offset=offset, token=self.token)

    def status(self) -> dict[str, Any]:
        """GET /api/status/; raises NetBoxError when NetBox is older than 4.0."""
        status: dict[str, Any] = self.call("/api/status/", self.api.status)
        version = str(status.get("netbox-version", ""))
        found = re.match(r"(\d+)\.(\d+)", version)
        if not found or (int(found[1]), int(found[2])) < MIN_VERSION:
            raise NetBoxError(f"NetBox at {self.url} reports version {version or 'unknown'}; "
                              f"dtnlab needs NetBox {'.'.join(map(str, MIN_VERSION))} or newer")
        return status

    def page(self, endpoint: str, params: dict[str, Any], offset: int,
             limit: int = PAGE_SIZE) -> tuple[list[NetBoxObject], int]:
        """One page of a list endpoint: (objects, total count of the query)."""
        req = self._request(endpoint, params, limit=limit, offset=offset)
        what = f"GET {endpoint} ({_short(params)})"
        started = time.perf_counter()
        items = self.call(what, lambda: list(req.get()))
        log.debug("%s offset %d: %d objects in %.2f s", what, offset, len(items),
                  time.perf_counter() - started)
        return items, int(getattr(req, "count", len(items)))

    def list_all(self, endpoint: str, params: dict[str, Any] | None = None,
                 limit: int = PAGE_SIZE) -> list[NetBoxObject]:
        """Every object of a list query, page after page (for small or write-side reads)."""
        params = dict(params or {})
        items, count = self.page(endpoint, params, 0, limit)
        page_size = len(items) or limit
        while len(items) < count:
            more, count = self.page(endpoint, params, len(items), page_size)
            if not more:
                break
            items.extend(more)
        return items

    # -- writes ------------------------------------------------------------------------------
    def post(self, endpoint: str, objects: list[dict[str, Any]]) -> list[NetBoxObject]:
        """Bulk-create `objects` with one list POST; returns what NetBox stored, in order."""
        req = self._request(endpoint)
        result = self.call(f"POST {endpoint}", lambda: req.post(objects))
        return result if isinstance(result, list) else [result]

    def patch(self, endpoint: str, objects: list[dict[str, Any]]) -> list[NetBoxObject]:
        """Bulk-update `objects` (each with its `id`) with one list PATCH."""
        req = self._request(endpoint)
        result = self.call(f"PATCH {endpoint}", lambda: req.patch(objects))
        return result if isinstance(result, list) else [result]


def chunk_ids(name: str, ids: Iterable[int], budget: int = MAX_QUERY_CHARS) -> Iterator[list[int]]:
    """Split ids into groups whose `name=<id>&...` query part stays under `budget` characters."""
    group: list[int] = []
    used = 0
    for value in ids:
        cost = len(name) + len(str(value)) + 2
        if group and used + cost > budget:
            yield group
            group, used = [], 0
        group.append(value)
        used += cost
    if group:
        yield group


def id_ranges(ids: Iterable[int], gap: int = PAGE_SIZE) -> list[tuple[int, int]]:
    """Runs of sorted ids as (first, last), a new run where the gap to the next id exceeds `gap`.

    A range filter (`__gte`/`__lte`) costs NetBox one index scan and no URL length, where a list
    of ids costs a long URL; it reads at most `gap` foreign objects per gap, dropped afterwards.
    """
    runs: list[tuple[int, int]] = []
    for value in sorted(set(ids)):
        if runs and value - runs[-1][1] <= gap:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    return runs


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "No route to host", "certificate verify failed", "Temporary failure"):
        if marker in text:
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return text[:200]


def _detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or resp.reason or "")[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:600]


def _short(params: dict[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k not in ("fields", "ordering")}
    text = urlencode(shown, doseq=True)
    return text if len(text) < 120 else text[:117] + "..."
