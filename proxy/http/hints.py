"""Client hints: `dpr=auto` and `w=auto` take their value from the request's hint headers.

A URL opts in per parameter (as `fmt=auto` opts in to Accept): only such URLs
depend on Sec-CH-DPR / Sec-CH-Width (or legacy DPR / Width), so only their
answers name those headers in Vary. The hint only picks a value from the
allow-list (proxy.negotiate snaps it), so a header cannot stretch a request.
"""

from __future__ import annotations

from functools import lru_cache

from starlette.datastructures import QueryParams
from starlette.requests import Request

from proxy.config import VariantSettings
from proxy.negotiate import HINT_HEADERS, hint_value, snap_dpr, snap_width
from proxy.params import BadParameter, normalize_params
from proxy.signing import SIGNATURE_PARAM

AUTO = "auto"

Hints = dict[str, float | None]  # "dpr"/"w" the URL leaves to client hints -> the hint sent, if any


@lru_cache(maxsize=4096)
def auto_params(query: bytes) -> tuple[str, ...]:
    """The parameters a raw query string leaves to client hints (`dpr=auto`, `w=auto`/`width=auto`).

    Once per distinct query: a cheap byte test first, then starlette's own query parser,
    so a repeated URL (`fmt=auto` included) does no parsing on the memoised hit path.
    """
    if b"auto" not in query.lower():
        return ()
    params = normalize_params((n, v) for n, v in QueryParams(query).multi_items() if n != SIGNATURE_PARAM)
    return tuple(name for name in HINT_HEADERS if params.get(name, "").lower() == AUTO)


def client_hints(request: Request) -> Hints:
    """The hint the client sent (or None) for each parameter the URL sets to `auto`."""
    return {
        name: hint_value(request.headers, HINT_HEADERS[name]) for name in auto_params(request.scope["query_string"])
    }


def hint_vary(hints: Hints) -> list[str]:
    """The request headers an answer depends on because of its `auto` parameters."""
    return [header for name in hints for header in HINT_HEADERS[name]]


def with_hints(items: list[tuple[str, str]], hints: Hints, v: VariantSettings) -> list[tuple[str, str]]:
    """The query with `dpr=auto`/`w=auto` replaced by the hint snapped to the allow-list, or
    dropped when the client sent no hint (as if the URL had not named the parameter)."""
    if not hints:
        return items
    params = normalize_params(items)
    if "w" in hints and {"h", "dpr", "p"} & params.keys():
        raise BadParameter(
            "w=auto takes the width in device pixels from Sec-CH-Width; it cannot be combined with h, dpr or p"
        )
    for name, hint in hints.items():
        if hint is None:
            del params[name]
        else:
            params[name] = f"{snap_dpr(hint, v.dprs):g}" if name == "dpr" else str(snap_width(hint, v.widths))
    return list(params.items())
