"""Variant queries written as URLs write them ("w=320&fmt=jpg"), parsed by proxy.variants.parse_query
against a config's [variants] (the built-in defaults unless given): the unit tests' shorthand."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import VariantSettings, parse_settings
from proxy.variants import BadParameter, VariantRequest, parse_query

DEFAULTS: VariantSettings = parse_settings({}, Path("/srv")).variants  # built-in presets included


def q(query: str, v: VariantSettings = DEFAULTS) -> VariantRequest:
    """parse_query on a URL-style query string."""
    items = [tuple(part.split("=", 1)) for part in query.split("&")] if query else []
    return parse_query(items, v)  # type: ignore[arg-type]


def bad(query: str, v: VariantSettings = DEFAULTS) -> str:
    """The message of the BadParameter the query must raise."""
    with pytest.raises(BadParameter) as info:
        q(query, v)
    return str(info.value)
