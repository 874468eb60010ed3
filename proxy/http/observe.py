"""One pure-ASGI middleware for what every request leaves behind: a request id, a JSON
access-log line, and the request metrics.

Pure ASGI (not starlette's BaseHTTPMiddleware) because it wraps every cached hit:
it only watches the messages going out, costing a few microseconds.

- `X-Request-ID`: taken from the request when it is a sane token (so a CDN's or
  load balancer's id follows the request), else generated; always echoed back.
- Access log (proxy.http.accesslog, batched): one JSON object per line on stdout:
  ts, method, path, query, status, bytes, duration_ms, cache (the X-Cache-Tier
  of image answers), request_id, client. Turn off with logging.access_log = false.
- Metrics: requests by route template (from the app's routes), method and status; body bytes by route;
  image answers by cache tier.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Mount, Route

from proxy import metrics
from proxy.http.accesslog import AccessLog

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RouteTemplates:
    """A request path -> the template of the app route that serves it, or "other".

    Metric labels must stay few whatever ids and junk paths arrive, so they name
    the template, never the path. The templates are the app's own routes (their
    `path_format`), so a new route needs no second edit here. Tried in the app's
    order, like starlette's router: the image route comes first, so an image
    request costs one precompiled regex match.
    """

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        patterns: dict[str, re.Pattern[str]] = {}
        for route in routes:
            if isinstance(route, (Route, Mount)):
                patterns.setdefault(route.path_format, route.path_regex)  # GET and DELETE share one
        self._patterns = [(regex, template) for template, regex in patterns.items()]

    def __call__(self, path: str) -> str:
        for regex, template in self._patterns:
            if regex.match(path):
                return template
        return "other"


def request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return os.urandom(12).hex()


@dataclass(slots=True)
class _Seen:
    """What the response said of itself, as it went out."""

    status: int = 500  # an app that raised before its response start
    bytes: int = 0
    tier: str = ""


class Observe:
    def __init__(self, app: ASGIApp, access_log: AccessLog | None, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.access_log = access_log
        self.route_of = RouteTemplates(routes)

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope)
        seen = _Seen()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
                headers = list(message.get("headers", ()))
                for name, value in headers:
                    if name == b"x-cache-tier":
                        seen.tier = value.decode()
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            elif message["type"] == "http.response.body" and scope["method"] != "HEAD":
                seen.bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._record(scope, rid, seen, time.perf_counter() - started)

    def _record(self, scope: Scope, rid: str, seen: _Seen, seconds: float) -> None:
        route = self.route_of(scope["path"])
        metrics.request_counter(route, scope["method"], seen.status).inc()
        if seen.bytes:
            metrics.bytes_counter(route).inc(seen.bytes)
        if seen.tier:
            metrics.cache_counter(seen.tier).inc()
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.write(
                {
                    "ts": round(time.time(), 3),
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "status": seen.status,
                    "bytes": seen.bytes,
                    "duration_ms": round(seconds * 1000, 3),
                    "cache": seen.tier or None,
                    "request_id": rid,
                    "client": client[0] if client else None,
                }
            )
