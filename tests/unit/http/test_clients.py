"""proxy.http.clients: who the real client is, from the peer and the trusted proxies' header.

The parsing functions are checked on the header forms proxies and CDNs write (RFC 7239's
examples among them); `RealClient` on ASGI scopes as uvicorn hands them over.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest

from proxy.config import ServerSettings
from proxy.http.clients import MEMO_HEADER, UNKNOWN, RealClient, address, client_hop, forwarded_hops, x_forwarded_hops

PROXIES = ipaddress.ip_network("10.0.0.0/8")


def trusted(ip: Any) -> bool:
    return ip in PROXIES


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.7", "192.0.2.7"),
        (" 192.0.2.7 ", "192.0.2.7"),
        ("192.0.2.7:4711", "192.0.2.7"),
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:4711", "2001:db8::7"),
        ("::ffff:127.0.0.1", "127.0.0.1"),  # IPv4-mapped: the IPv4 address it is
        ("[::ffff:10.1.2.3]:80", "10.1.2.3"),
    ],
)
def test_addresses_in_the_forms_proxies_write(text: str, expected: str) -> None:
    assert str(address(text)) == expected


@pytest.mark.parametrize(
    "text",
    ["", "unknown", "_hidden", "_SEVKISEK", "[2001:db8::7", "example.com", "300.1.2.3", "1.2.3.4.5", "; drop table"],
)
def test_anything_else_is_no_address(text: str) -> None:
    assert address(text) is None


def test_forwarded_elements_with_their_for_and_proto() -> None:
    header = 'for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", proto=https'
    assert forwarded_hops(header) == [("192.0.2.60", "http"), ("[2001:db8:cafe::17]:4711", ""), ("", "https")]


def test_forwarded_quoted_strings_keep_their_separators_and_escapes() -> None:
    header = 'for="a,b;c";proto=https, for="\\"x\\"", for=198.51.100.17'
    assert forwarded_hops(header) == [("a,b;c", "https"), ('"x"', ""), ("198.51.100.17", "")]


def test_x_forwarded_for_entries_share_the_one_proto() -> None:
    assert x_forwarded_hops("203.0.113.9, 10.0.0.2,", " https") == [("203.0.113.9", "https"), (" 10.0.0.2", "https")]
    assert x_forwarded_hops("", "https") == []


@pytest.mark.parametrize(
    ("hops", "client"),
    [
        (["203.0.113.9"], "203.0.113.9"),
        (["203.0.113.9", "10.0.0.2"], "203.0.113.9"),  # past the trusted hop
        (["127.0.0.1", "203.0.113.9", "10.0.0.2"], "203.0.113.9"),  # what the client itself wrote is not believed
        (["10.0.0.5", "10.0.0.2"], "10.0.0.5"),  # all trusted: a client inside the trusted network
        (["203.0.113.9", "unknown"], None),  # a trusted hop that knew no client
        (["garbage", "10.0.0.2"], None),
        (["garbage", "203.0.113.9"], "203.0.113.9"),  # left of the client is the client's own word: never read
        ([], None),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(hops: list[str], client: str | None) -> None:
    found = client_hop([(hop, "https") for hop in hops], trusted)
    assert (str(found[0]) if found else None) == client


def run(scope: dict[str, Any], **server: Any) -> dict[str, Any]:
    """`scope` as the app behind RealClient sees it."""
    seen: dict[str, Any] = {}

    async def app(inner: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(inner)

    asyncio.run(RealClient(app, ServerSettings(**server))(scope, None, None))
    return seen


def http(peer: str, *headers: tuple[str, str]) -> dict[str, Any]:
    """An HTTP scope from `peer`; header names lowercase, as ASGI servers pass them."""
    return {
        "type": "http",
        "client": (peer, 50000),
        "scheme": "http",
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }


def test_without_trusted_proxies_forwarding_headers_are_never_read() -> None:
    scope = run(http("127.0.0.1", ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")))
    assert scope["client"] == ("127.0.0.1", 50000) and scope["scheme"] == "http" and UNKNOWN not in scope


def test_a_trusted_proxy_names_the_client_and_its_scheme() -> None:
    scope = run(
        http("10.0.0.2", ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "https")),
        trusted_proxies=("10.0.0.0/8",),
    )
    assert scope["client"] == ("203.0.113.9", 0) and scope["scheme"] == "https"


def test_several_x_forwarded_for_headers_read_as_one_list() -> None:
    scope = run(
        http("10.0.0.2", ("x-forwarded-for", "198.51.100.1"), ("x-forwarded-for", "203.0.113.9, 10.0.0.3")),
        trusted_proxies=("10.0.0.0/8",),
    )
    assert scope["client"] == ("203.0.113.9", 0)


def test_an_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    scope = run(
        http("203.0.113.50", ("x-forwarded-for", "10.0.0.9"), ("forwarded", "for=10.0.0.9")),
        trusted_proxies=("10.0.0.0/8",),
    )
    assert scope["client"] == ("203.0.113.50", 50000) and UNKNOWN not in scope


def test_a_trusted_proxy_that_names_no_client_leaves_it_unknown() -> None:
    for headers in ([], [("x-forwarded-for", "")], [("x-forwarded-for", "unknown")]):
        scope = run(http("10.0.0.2", *headers), trusted_proxies=("10.0.0.2",))
        assert scope[UNKNOWN] is True and scope["client"] == ("10.0.0.2", 50000), headers


def test_only_the_configured_header_is_read() -> None:
    both = http("10.0.0.2", ("x-forwarded-for", "203.0.113.9"), ("forwarded", 'for="198.51.100.7:80";proto=https'))
    assert run(dict(both), trusted_proxies=("10.0.0.0/8",))["client"] == ("203.0.113.9", 0)
    forwarded = run(dict(both), trusted_proxies=("10.0.0.0/8",), forwarded_header="forwarded")
    assert forwarded["client"] == ("198.51.100.7", 0) and forwarded["scheme"] == "https"
    only_xff = run(
        http("10.0.0.2", ("x-forwarded-for", "203.0.113.9")),
        trusted_proxies=("10.0.0.0/8",),
        forwarded_header="forwarded",
    )
    assert only_xff[UNKNOWN] is True


def test_a_scheme_other_than_http_or_https_is_ignored() -> None:
    scope = run(
        http("10.0.0.2", ("x-forwarded-for", "203.0.113.9"), ("x-forwarded-proto", "javascript")),
        trusted_proxies=("10.0.0.0/8",),
    )
    assert scope["scheme"] == "http"


def test_a_mapped_peer_address_is_trusted_as_its_ipv4() -> None:
    scope = run(http("::ffff:127.0.0.1", ("x-forwarded-for", "203.0.113.9")), trusted_proxies=("127.0.0.1",))
    assert scope["client"] == ("203.0.113.9", 0)


def test_other_scopes_pass_untouched() -> None:
    assert run({"type": "lifespan"}, trusted_proxies=("10.0.0.0/8",)) == {"type": "lifespan"}


def test_a_long_chain_is_read_like_a_short_one() -> None:
    """Past MEMO_HEADER characters the value is worked out each time rather than remembered."""
    chain = ", ".join(["198.51.100.1", "203.0.113.9", *(f"10.0.{i // 256}.{i % 256}" for i in range(60))])
    assert len(chain) > MEMO_HEADER
    for _ in range(2):
        scope = run(http("10.0.0.2", ("x-forwarded-for", chain)), trusted_proxies=("10.0.0.0/8",))
        assert scope["client"] == ("203.0.113.9", 0)
