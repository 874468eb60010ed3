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
X-Forwarded-For, trusts 127.0.0.1 and ::1 (or FORWARDED_ALLOW_IPS from the environment) unless told
otherwise, and overwrites the peer, so a trusted proxy that named no client could not be told
from a client claiming a trusted address. `RealClient` is the outermost middleware: the real
client goes into scope["client"], where the access log and `request.client` find it, and the
scheme the client used (X-Forwarded-Proto, or `proto=`) into scope["scheme"].
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, MutableMapping
from functools import lru_cache
from typing import Any

from starlette.requests import Request

from proxy.config import ServerSettings

Scope = MutableMapping[str, Any]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Hop = tuple[str, str]  # what one proxy wrote: (for, proto), "" where it wrote nothing
UNKNOWN = "resize_proxy.client_unknown"  # scope key: a trusted proxy named no client
SCHEMES = ("http", "https")
LONGEST_ENTRY = 64  # an IPv6 address with zone, brackets and port fits; longer is no address
MEMO = 4096  # peers and header values whose meaning is remembered
MEMO_HEADER = 256  # longer header values are not remembered (the memo stays small)


def address(text: str) -> Address | None:
    """The IP address in a forwarding entry (`192.0.2.7`, `192.0.2.7:4711`, `[2001:db8::7]:4711`,
    `2001:db8::7`), IPv4-mapped IPv6 as IPv4; None for anything else."""
    text = text.strip()
    if len(text) > LONGEST_ENTRY:
        return None
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
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
    """Pure-ASGI middleware: the real client into scope["client"], or the UNKNOWN mark.

    It wraps every cached hit, so what can be is memoised: whether a peer is trusted, and
    what a header value names (bounded LRUs; a header too long to be a few hops is worked
    out each time rather than kept).
    """

    def __init__(self, app: Callable[..., Awaitable[None]], server: ServerSettings) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(net, strict=False) for net in server.trusted_proxies)
        self.forwarded = server.forwarded_header == "forwarded"
        self.wanted = (b"forwarded",) if self.forwarded else (b"x-forwarded-for", b"x-forwarded-proto")
        self.trusted_peer = lru_cache(maxsize=MEMO)(self._trusted_peer)
        self.named = lru_cache(maxsize=MEMO)(self._named)

    def trusted(self, ip: Address) -> bool:
        return any(ip in net for net in self.networks)

    def _trusted_peer(self, host: str) -> bool:
        ip = address(host)
        return ip is not None and self.trusted(ip)

    def _named(self, header: str, proto: str) -> tuple[str, str] | None:
        """(client, scheme) that the header's value names, None if it names no client."""
        hops = forwarded_hops(header) if self.forwarded else x_forwarded_hops(header, proto)
        found = client_hop(hops, self.trusted)
        return None if found is None else (str(found[0]), found[1].lower())

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        peer = scope.get("client")
        if self.networks and scope["type"] == "http" and peer and self.trusted_peer(peer[0]):
            self._resolve(scope)
        await self.app(scope, receive, send)

    def _resolve(self, scope: Scope) -> None:
        found: dict[bytes, list[str]] = {}
        for name, value in scope["headers"]:
            if name in self.wanted:
                found.setdefault(name, []).append(value.decode("latin-1"))
        header = ",".join(found.get(self.wanted[0], ()))
        protos = found.get(b"x-forwarded-proto", [])
        proto = protos[0] if len(protos) == 1 else ""
        named = (self.named if len(header) <= MEMO_HEADER else self._named)(header, proto)
        if named is None:
            scope[UNKNOWN] = True
            return
        client, scheme = named
        scope["client"] = (client, 0)
        if scheme in SCHEMES:
            scope["scheme"] = scheme


def client_id(request: Request) -> str | None:
    """The real client's address; None when a trusted proxy named none (see RealClient)."""
    if request.scope.get(UNKNOWN) or request.client is None:
        return None
    return request.client.host
