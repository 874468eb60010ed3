"""proxy.http.auth: which identity a bearer token names, and which rate-limit bucket a write is charged to."""

from __future__ import annotations

import pytest

from proxy.config import AuthSettings
from proxy.http.auth import Identity, token_holder, write_bucket

SHOP = "shop-secret-0123456789"
OPS = "ops-secret-0123456789ab"
AUTH = AuthSettings(tokens={"shop": SHOP, "ops": OPS}, admins=("ops",))


def test_a_bearer_token_names_its_holder_and_whether_it_is_an_admin() -> None:
    assert token_holder(f"Bearer {SHOP}", AUTH) == Identity("shop", admin=False)
    assert token_holder(f"bearer  {OPS} ", AUTH) == Identity("ops", admin=True)  # scheme case, stray spaces


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        f"Basic {SHOP}",
        f"Token {SHOP}",
        f"Bearer {SHOP[:-1]}",
        f"Bearer {SHOP}x",
        f"Bearer {SHOP} {OPS}",
        SHOP,
    ],
)
def test_anything_but_a_configured_bearer_token_names_nobody(header: str) -> None:
    assert token_holder(header, AUTH) is None


def test_no_configured_tokens_name_nobody() -> None:
    assert token_holder(f"Bearer {SHOP}", AuthSettings()) is None


def test_a_write_is_charged_to_its_token_else_to_its_address() -> None:
    """A token's bucket is the same from every address; without a token, the address pays,
    and a client nobody named (a trusted proxy forwarded none) has no bucket of its own."""
    shop = Identity("shop", admin=False)
    assert write_bucket(shop, "198.51.100.7") == write_bucket(shop, "203.0.113.9") == "token shop"
    assert write_bucket(None, "198.51.100.7") == "address 198.51.100.7"
    assert write_bucket(None, None) is None
    assert write_bucket(shop, None) == "token shop"
