"""Who is writing: a named bearer token from `auth.tokens`, or, with none configured, a loopback client.

A token's name is the identity that owns what it uploads (see the references in the
README); `auth.admins` names the identities that may purge any image outright.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

from starlette.requests import Request

from proxy.config import AuthSettings
from proxy.http.errors import ApiError

LOCAL = "local"  # the identity of a loopback client when no tokens are configured


@dataclass(frozen=True)
class Identity:
    name: str
    admin: bool


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


def token_holder(authorization: str, auth: AuthSettings) -> Identity | None:
    """The identity whose secret the `Authorization: Bearer` value carries, else None.

    Every configured secret is compared in constant time, with no early exit, so the
    timing says nothing about which token (or how much of one) was guessed.
    """
    scheme, _, given = authorization.partition(" ")
    given_bytes = given.strip().encode()
    found = None
    for name, secret in auth.tokens.items():
        if hmac.compare_digest(secret.encode(), given_bytes):
            found = name
    if scheme.lower() != "bearer" or found is None:
        return None
    return Identity(found, found in auth.admins)


def require_identity(request: Request) -> Identity:
    """The writer of this request, or 401/403: uploads and deletes need one, reads never do."""
    auth: AuthSettings = request.app.state.settings.auth
    if not auth.tokens:
        if not is_loopback(client_id(request)):
            raise ApiError(403, "forbidden", "no upload token is configured (auth.tokens), "
                                             "so only loopback clients may upload or delete")
        return Identity(LOCAL, admin=True)
    identity = token_holder(request.headers.get("authorization", ""), auth)
    if identity is None:
        raise ApiError(401, "unauthorized", "a valid 'Authorization: Bearer <token>' header is required",
                       {"www-authenticate": 'Bearer realm="resize-proxy"'})
    return identity
