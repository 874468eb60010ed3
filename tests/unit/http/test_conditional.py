"""proxy.http.conditional: byte ranges (RFC 9110 14.1.2)."""

from __future__ import annotations

import pytest

from proxy.http.conditional import byte_range
from proxy.http.errors import ApiError


def test_byte_ranges_follow_rfc_9110() -> None:
    assert byte_range("bytes=0-99", 1000) == (0, 99)
    assert byte_range("bytes=900-", 1000) == (900, 999)
    assert byte_range("bytes=990-5000", 1000) == (990, 999)  # the end is clamped
    assert byte_range("bytes=-100", 1000) == (900, 999)
    assert byte_range("bytes=-5000", 1000) == (0, 999)
    for ignored in ("bytes=0-9,20-29", "bytes=5-1", "bytes=-", "items=0-9", "bytes=a-b"):
        assert byte_range(ignored, 1000) is None, ignored
    for unsatisfiable in ("bytes=1000-", "bytes=-0"):
        with pytest.raises(ApiError) as err:
            byte_range(unsatisfiable, 1000)
        assert err.value.status == 416 and err.value.headers == {"content-range": "bytes */1000"}
