"""Who may upload and delete: a bearer token from config, or, with none configured, loopback only."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request

from proxy.http.errors import ApiError


def is_loopback(host: str) -> bool:
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool((mapped or addr).is_loopback)


def client_id(request: Request) -> str:
    """The client's address (uvicorn resolves X-Forwarded-For from trusted proxies)."""
    return request.client.host if request.client else ""


def require_writer(request: Request, tokens: tuple[str, ...]) -> None:
    """Raise 401/403 unless the request may write. Tokens are compared in constant time."""
    if not tokens:
        host = request.client.host if request.client else ""
        if not is_loopback(host):
            raise ApiError(403, "forbidden", "no upload token is configured (auth.upload_tokens), "
                                             "so only loopback clients may upload or delete")
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given_bytes = given.strip().encode()
    # Compare against every token (no early exit), so timing reveals nothing.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(token.encode(), given_bytes)
    if scheme.lower() != "bearer" or not matched:
        raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <token>' header is required",
                       {"www-authenticate": 'Bearer realm="resize-proxy"'})
