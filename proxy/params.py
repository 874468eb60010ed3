"""The names of an image URL's query parameters, their aliases, and folding a query onto them.

A leaf module on purpose: it imports nothing but the standard library, because the
signature (proxy/signing.py) covers the folded parameters and the Python client
(clients/python) ships this file and signing.py as they are, so an app signs URLs with
the very code the server verifies them with, without installing the server. Both files
therefore import each other relatively and nothing else from the package.
"""

from __future__ import annotations

from collections.abc import Iterable

PARAM_ALIASES = {
    "width": "w",
    "height": "h",
    "format": "fmt",
    "f": "fmt",
    "quality": "q",
    "preset": "p",
    "gravity": "g",
    "background": "bg",
}
KNOWN_PARAMS = ("w", "h", "fit", "fmt", "q", "dpr", "p", "g", "fp", "crop", "bg")


class BadParameter(ValueError):
    """A query parameter is unknown, malformed or not on the allow-list."""


def listing(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def normalize_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query pairs with aliases folded to canonical names; unknown or repeated names are refused."""
    params: dict[str, str] = {}
    for raw_name, value in items:
        name = PARAM_ALIASES.get(raw_name.lower(), raw_name.lower())
        if name not in KNOWN_PARAMS:
            raise BadParameter(f"unknown parameter {raw_name!r}; known parameters: {listing(KNOWN_PARAMS)}")
        if name in params:
            raise BadParameter(f"parameter {name!r} given more than once")
        params[name] = value.strip()
    return params
