"""The real client of a request, as far as the connection and the trusted proxies can tell.

The peer of the connection is the client, unless its address is in `server.trusted_proxies`:
then the header that proxy writes (`server.forwarded_header`: X-Forwarded-For, or RFC 7239
`Forwarded: for=`) says who connected to it. The header is read right to left past every
entry that is itself a trusted proxy, because each proxy appends the address it saw and
everything further left is the client's own word; the first untrusted address is the
client (the leftmost when all are trusted: a client inside the trusted network). Only the
configured header is read: a proxy that writes one of them passes a client's copy of the
other on untouched, so believing both would let the client choose its address.

A trusted proxy that names no client (no header, `for=unknown`, an obfuscated `for=_x`, an
entry that is no address) leaves the client unknown, and such requests are not counted as
one client (README: the rate-limit model). With no trusted proxies, forwarding headers are
never read.

This replaces uvicorn's proxy-header handling (`serve` turns it off): that one reads only
X-Forwarded-For, trusts 127.0.0.1 (or FORWARDED_ALLOW_IPS from the environment) unless told
otherwise, and overwrites the peer, so a trusted proxy that named no client could not be told
from a client claiming a trusted address. `RealClient` is the outermost middleware: the real
client goes into scope["client"], where the access log and `request.client` find it, and the
scheme the client used (X-Forwarded-Proto, or `proto=`) into scope["scheme"].
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Awaitable, Callable, MutableMapping

from starlette.requests import Request

from proxy.config import ServerSettings

Scope = MutableMapping[str, Any]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Hop = tuple[str, str]  # what one proxy wrote: (for, proto), "" where it wrote nothing
UNKNOWN = "resize_proxy.client_unknown"  # scope key: a trusted proxy named no client
SCHEMES = ("http", "https")


def address(text: str) -> Address | None:
    """The IP address in a forwarding entry (`192.0.2.7`, `192.0.2.7:4711`, `[2001:db8::7]:4711`,
    `2001:db8::7`), IPv4-mapped IPv6 as IPv4; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        found = ipaddress.ip_address(text)
    except ValueError:
        return None
    return (found.ipv4_mapped or found) if isinstance(found, ipaddress.IPv6Address) else found


def _split(text: str, separator: str) -> list[str]:
    """`text` cut at `separator`, except inside quoted strings."""
    return re.findall(rf'(?:[^{separator}"]|"(?:[^"\\]|\\.)*")+', text)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def forwarded_hops(value: str) -> list[Hop]:
    """The elements of RFC 7239 `Forwarded` headers (joined with commas), left to right."""
    hops = []
    for element in _split(value, ","):
        params = {}
        for pair in _split(element, ";"):
            name, _, written = pair.partition("=")
            params[name.strip().lower()] = _unquote(written)
        hops.append((params.get("for", ""), params.get("proto", "")))
    return hops


def x_forwarded_hops(value: str, proto: str) -> list[Hop]:
    """X-Forwarded-For entries, left to right, each with the request's one X-Forwarded-Proto."""
    return [(entry, proto.strip()) for entry in value.split(",") if entry.strip()]


def client_hop(hops: list[Hop], trusted: Callable[[Address], bool]) -> tuple[Address, str] | None:
    """(client address, scheme it used) from a trusted proxy's hops: the rightmost address that is
    not a trusted proxy, else the leftmost; None when an entry on the way names no address."""
    found = None
    for hop_for, proto in reversed(hops):
        ip = address(hop_for)
        if ip is None:
            return None
        found = (ip, proto)
        if not trusted(ip):
            break
    return found


class RealClient:
    """Pure-ASGI middleware: the real client into scope["client"], or the UNKNOWN mark."""

    def __init__(self, app: Callable[..., Awaitable[None]], server: ServerSettings) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(net, strict=False) for net in server.trusted_proxies)
        self.forwarded = server.forwarded_header == "forwarded"

    def trusted(self, ip: Address) -> bool:
        return any(ip in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        peer = scope.get("client")
        if self.networks and scope["type"] == "http" and peer:
            ip = address(peer[0])
            if ip is not None and self.trusted(ip):
                self._resolve(scope)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> None:
        headers: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, []).append(value.decode("latin-1"))
        if self.forwarded:
            hops = forwarded_hops(",".join(headers.get(b"forwarded", ())))
        else:
            protos = headers.get(b"x-forwarded-proto", [])
            hops = x_forwarded_hops(",".join(headers.get(b"x-forwarded-for", ())), protos[0] if len(protos) == 1 else "")
        found = client_hop(hops, self.trusted)
        if found is None:
            scope[UNKNOWN] = True
            return
        ip, proto = found
        scope["client"] = (str(ip), 0)
        if proto.lower() in SCHEMES:
            scope["scheme"] = proto.lower()


def client_id(request: Request) -> str | None:
    """The real client's address; None when a trusted proxy named none (see RealClient)."""
    if request.scope.get(UNKNOWN) or request.client is None:
        return None
    return request.client.host
