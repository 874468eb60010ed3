"""Parse and validate variant query parameters against the configured allow-list.

Only sizes, qualities, densities and formats that the operator listed can be
asked for, so nobody can make the origin render (and store) endless sizes.
A bad request gets a `BadParameter` whose message lists what is allowed.

Aliases (`width`, `format=jpg`, `fit=contain`) are folded here, and the
geometry step later folds requests that give identical pixels, so equivalent
URLs share one canonical variant key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from proxy.config import FITS, SecuritySettings, VariantSettings
from proxy.formats import OUTPUT_SPELLINGS

_PARAM_ALIASES = {"width": "w", "height": "h", "format": "fmt", "f": "fmt", "quality": "q", "preset": "p"}
_FIT_ALIASES = {"inside": "inside", "contain": "inside", "max": "inside", "cover": "cover", "crop": "cover",
                "fill": "cover"}
_FMT_ALIASES = OUTPUT_SPELLINGS | {"auto": "auto"}
KNOWN_PARAMS = ("w", "h", "fit", "fmt", "q", "dpr", "p")


class BadParameter(ValueError):
    """A query parameter is unknown, malformed or not on the allow-list."""


@dataclass(frozen=True)
class VariantRequest:
    """A validated request; w and h already multiplied by dpr. fmt None means negotiate."""

    w: int | None
    h: int | None
    fit: str
    fmt: str | None
    q: int | None
    max_pixels: int | None = None  # set for signed requests: the output's hard cap


def _int(name: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadParameter(f"{name} must be a whole number, got {text!r}") from None


def _listing(values: Iterable[object]) -> str:
    return ", ".join(str(v) for v in values)


def _allowed_int(name: str, text: str, allowed: tuple[int, ...], cap: int | None = None) -> int:
    """A value from the allow-list; or, for a signed request (`cap` set), any value from 1 to the cap."""
    value = _int(name, text)
    if cap is not None:
        if not 1 <= value <= cap:
            raise BadParameter(f"{name}={value} is outside the hard cap for signed URLs (1..{cap})")
    elif value not in allowed:
        raise BadParameter(f"{name}={value} is not allowed; allowed values: {_listing(allowed)}")
    return value


def _dpr(text: str, allowed: tuple[float, ...], signed: bool) -> float:
    try:
        value = float(text.rstrip("xX"))
    except ValueError:
        raise BadParameter(f"dpr must be a number, got {text!r}") from None
    if signed and 0.25 <= value <= 4:
        return value
    if value not in allowed:
        raise BadParameter(f"dpr={text} is not allowed; allowed values: {_listing(f'{d:g}' for d in allowed)}")
    return value


def normalize_params(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query pairs with aliases folded to canonical names; unknown or repeated names are refused."""
    params: dict[str, str] = {}
    for raw_name, value in items:
        name = _PARAM_ALIASES.get(raw_name.lower(), raw_name.lower())
        if name not in KNOWN_PARAMS:
            raise BadParameter(f"unknown parameter {raw_name!r}; known parameters: {_listing(KNOWN_PARAMS)}")
        if name in params:
            raise BadParameter(f"parameter {name!r} given more than once")
        params[name] = value.strip()
    return params


def parse_query(items: Iterable[tuple[str, str]], v: VariantSettings,
                signed: SecuritySettings | None = None) -> VariantRequest:
    """Validate query (name, value) pairs into a VariantRequest; raises BadParameter.

    `signed` is given only after the request's signature was verified: sizes,
    qualities and densities may then leave the allow-list, within its hard caps.
    """
    params = normalize_params(items)

    w = h = q = None
    fit, fmt = "inside", None
    if "p" in params:
        preset = v.presets.get(params["p"])
        if preset is None:
            raise BadParameter(f"unknown preset {params['p']!r}; presets: {_listing(sorted(v.presets)) or 'none'}")
        clash = [n for n in ("w", "h", "fit") if n in params]
        if clash:
            raise BadParameter(f"p= sets the size; it cannot be combined with {', '.join(clash)}")
        w, h, fit, fmt, q = preset.w, preset.h, preset.fit, preset.fmt, preset.q
    if "w" in params:
        w = _allowed_int("w", params["w"], v.widths, signed.max_width if signed else None)
    if "h" in params:
        h = _allowed_int("h", params["h"], v.heights, signed.max_height if signed else None)
    if "fit" in params:
        fit = _FIT_ALIASES.get(params["fit"].lower(), "")
        if fit not in FITS:
            raise BadParameter(f"fit={params['fit']} is not allowed; allowed values: inside (contain), cover (crop)")
    if "fmt" in params:
        chosen = _FMT_ALIASES.get(params["fmt"].lower())
        if chosen is None or (chosen != "auto" and chosen not in v.formats):
            raise BadParameter(f"fmt={params['fmt']} is not allowed; allowed values: auto, {_listing(v.formats)}")
        fmt = None if chosen == "auto" else chosen
    if "q" in params:
        q = _allowed_int("q", params["q"], v.qualities, 100 if signed else None)
    if w is None and h is None:  # no size: the largest allowed box, never more than the original
        w, h = max(v.widths), max(v.heights)
    if "dpr" in params:
        dpr = _dpr(params["dpr"], v.dprs, signed is not None)
        w = round(w * dpr) if w else None
        h = round(h * dpr) if h else None
    if signed is None:
        return VariantRequest(w=w, h=h, fit=fit, fmt=fmt, q=q)
    if (w or 0) > signed.max_width or (h or 0) > signed.max_height:
        raise BadParameter(f"the size after dpr is outside the hard cap for signed URLs "
                           f"({signed.max_width}x{signed.max_height})")
    return VariantRequest(w=w, h=h, fit=fit, fmt=fmt, q=q, max_pixels=signed.max_pixels)

