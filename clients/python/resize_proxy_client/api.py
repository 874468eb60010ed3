"""Upload and delete over httpx, with the bearer token (auth.tokens), sync and async.

Each call is described once (`_Call`: method, path, body) and its answer read once (`_answer`), so the
sync and async clients differ only in how they send it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from .urls import ImageUrls


class ServiceError(Exception):
    """The service answered an error: its status and JSON `{"error", "detail"}`."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(f"{status} {error}: {detail}")
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _upload(data: bytes) -> _Call:
    """The raw body: the service detects the format from the bytes, never from a name or a type."""
    return _Call("POST", "/img", data, {"content-type": "application/octet-stream"})


def _delete(image_id: str) -> _Call:
    return _Call("DELETE", f"/img/{image_id}")


def _meta(image_id: str) -> _Call:
    return _Call("GET", f"/img/{image_id}/meta")


def _answer(r: httpx.Response) -> Any:
    """The JSON answer (None for a 204), or a ServiceError with the service's own code and detail."""
    if r.is_success:
        return r.json() if r.content else None
    try:
        body = r.json()
        error, detail = body["error"], body["detail"]
    except (ValueError, KeyError, TypeError):
        error, detail = "http_error", r.text[:200]
    raise ServiceError(r.status_code, error, detail)


class _Base:
    def __init__(self, base_url: str, token: str, signing_key: str | None = None) -> None:
        self.urls = ImageUrls(base_url, signing_key)
        self._headers = {"authorization": f"Bearer {token}"}

    def _options(self, timeout: float) -> dict[str, Any]:
        return {"base_url": self.urls.base_url, "headers": self._headers, "timeout": timeout}


class Client(_Base):
    """Blocking client: `upload(bytes)` returns the service's upload answer (id, width, height, srcset,
    picture, ...); `delete(id)`; `meta(id)`. Use it as a context manager or call close()."""

    def __init__(self, base_url: str, token: str, signing_key: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(base_url, token, signing_key)
        self._http = httpx.Client(**self._options(timeout))

    def _send(self, call: _Call) -> Any:
        return _answer(self._http.request(call.method, call.path, content=call.content, headers=call.headers))

    def upload(self, data: bytes) -> dict[str, Any]:
        return dict(self._send(_upload(data)))

    def delete(self, image_id: str) -> None:
        self._send(_delete(image_id))

    def meta(self, image_id: str) -> dict[str, Any]:
        return dict(self._send(_meta(image_id)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncClient(_Base):
    """The same over asyncio (FastAPI, Starlette, aiohttp apps): `await upload(bytes)`, and so on."""

    def __init__(self, base_url: str, token: str, signing_key: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(base_url, token, signing_key)
        self._http = httpx.AsyncClient(**self._options(timeout))

    async def _send(self, call: _Call) -> Any:
        return _answer(await self._http.request(call.method, call.path, content=call.content, headers=call.headers))

    async def upload(self, data: bytes) -> dict[str, Any]:
        return dict(await self._send(_upload(data)))

    async def delete(self, image_id: str) -> None:
        await self._send(_delete(image_id))

    async def meta(self, image_id: str) -> dict[str, Any]:
        return dict(await self._send(_meta(image_id)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
