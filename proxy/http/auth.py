"""Who is writing: the holder of a named bearer token from `auth.tokens`, or of the admin token
the service generated for itself when none are configured (proxy.credentials).

Every upload and delete needs a token, whatever address it comes from: an address says
nothing behind a reverse proxy or CDN, where every client arrives from the proxy's. A
token's name is the identity that owns what it uploads (see the references in the README);
`auth.admins` names the identities that may purge any image outright.

Writes are rate limited per token (an app backend uploads for all its users from one
address), and a write without a valid token per client address, counted before its 401
(README: the rate-limit model).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from proxy.config import AuthSettings
from proxy.http.clients import client_id
from proxy.http.errors import ApiError
from proxy.ratelimit import TokenBuckets


@dataclass(frozen=True)
class Identity:
    name: str
    admin: bool


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


def write_bucket(identity: Identity | None, client: str | None) -> str | None:
    """The rate-limit bucket a write is charged to: its token's, else its client's address
    (None: a trusted proxy named no client, so only the global bounds apply)."""
    if identity is not None:
        return f"token {identity.name}"
    return f"address {client}" if client is not None else None


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "a valid 'Authorization: Bearer <token>' header is required",
        {"www-authenticate": 'Bearer realm="resize-proxy"'},
    )


def require_identity(request: Request) -> Identity:
    """Who asks, for a read that answers per caller (GET /meta with a token); 401 without a valid token.
    Charges no write: reading one's own references is not an upload."""
    identity = token_holder(request.headers.get("authorization", ""), request.app.state.settings.auth)
    if identity is None:
        raise _unauthorized()
    return identity


def require_writer(request: Request) -> Identity:
    """The writer of this request, charged one write; 401 without a valid token, 429 past the limit.

    The charge comes first, so guessing tokens is rate limited per address like any other write."""
    auth: AuthSettings = request.app.state.settings.auth
    writes: TokenBuckets = request.app.state.service.uploads
    identity = token_holder(request.headers.get("authorization", ""), auth)
    writes.take(write_bucket(identity, client_id(request)))
    if identity is None:
        raise _unauthorized()
    return identity
