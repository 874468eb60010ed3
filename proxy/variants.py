"""Parse and validate variant query parameters against the configured allow-list.

Only sizes, qualities, densities and formats that the operator listed can be
asked for, so nobody can make the origin render (and store) endless sizes.
A bad request gets a `BadParameter` whose message lists what is allowed.

Aliases (`width`, `format=jpg`, `fit=contain`) are folded here, and the
geometry step later folds requests that give identical pixels, so equivalent
URLs share one canonical variant key.

Snapping (`variants.snap = "up"`, the default): frameworks write their own widths
(Next.js asks for 750, 828, 3840; unpic for 6016), and a framework's width must not
become a broken image. A `w` or `h` not on the list is served as the smallest allowed
value at or above it (capped at the largest) and a `q` as the nearest allowed one; the
snapped value then goes through the same geometry and canonical key as an exact request
for it, so any width costs at most one render per allowed size. Signed URLs are exempt:
they are checked against their hard caps instead and render exactly what was signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from proxy.config import FITS, SecuritySettings, VariantSettings
from proxy.formats import OUTPUT_SPELLINGS
from proxy.negotiate import snap_width
from proxy.params import BadParameter, listing, normalize_params

_FIT_ALIASES = {"inside": "inside", "contain": "inside", "max": "inside", "cover": "cover", "crop": "cover",
                "fill": "cover"}
_FMT_ALIASES = OUTPUT_SPELLINGS | {"auto": "auto"}
MAX_QUALITY = 100

Snap = Callable[[int, tuple[int, ...]], int]  # (asked, allowed) -> the allowed value served


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


def nearest(value: int, allowed: tuple[int, ...]) -> int:
    """The allowed value closest to `value`; a tie goes to the higher (the better-looking) one."""
    return min(allowed, key=lambda a: (abs(a - value), -a))


def on_list(name: str, value: int, allowed: tuple[int, ...], snap: Snap | None, top: int | None = None) -> int:
    """`value` if it is allowed; else snapped onto the list when snapping is on (for values from 1 to
    `top`: a width may be any size, a quality is 1..100), else refused, listing what is allowed."""
    if value in allowed:
        return value
    if snap is None:
        raise BadParameter(f"{name}={value} is not allowed; allowed values: {listing(allowed)}")
    if value < 1 or (top is not None and value > top):
        raise BadParameter(f"{name}={value} is outside 1..{top}" if top else f"{name}={value}: must be at least 1")
    return snap(value, allowed)


def _allowed_int(name: str, text: str, allowed: tuple[int, ...], cap: int | None, snap: Snap | None,
                 top: int | None = None) -> int:
    """A value from the allow-list (or snapped onto it); or, for a signed request (`cap` set), any
    value from 1 to the cap, exactly as signed."""
    value = _int(name, text)
    if cap is None:
        return on_list(name, value, allowed, snap, top)
    if not 1 <= value <= cap:
        raise BadParameter(f"{name}={value} is outside the hard cap for signed URLs (1..{cap})")
    return value


def _dpr(text: str, allowed: tuple[float, ...], signed: bool) -> float:
    try:
        value = float(text.rstrip("xX"))
    except ValueError:
        raise BadParameter(f"dpr must be a number, got {text!r}") from None
    if signed and 0.25 <= value <= 4:
        return value
    if value not in allowed:
        raise BadParameter(f"dpr={text} is not allowed; allowed values: {listing(f'{d:g}' for d in allowed)}")
    return value


def parse_query(items: Iterable[tuple[str, str]], v: VariantSettings,
                signed: SecuritySettings | None = None) -> VariantRequest:
    """Validate query (name, value) pairs into a VariantRequest; raises BadParameter.

    `signed` is given only after the request's signature was verified: sizes,
    qualities and densities may then leave the allow-list, within its hard caps.
    """
    params = normalize_params(items)
    snapping = v.snap == "up"
    size_snap, quality_snap = (snap_width, nearest) if snapping else (None, None)

    w = h = q = None
    fit, fmt = "inside", None
    if "p" in params:
        preset = v.presets.get(params["p"])
        if preset is None:
            raise BadParameter(f"unknown preset {params['p']!r}; presets: {listing(sorted(v.presets)) or 'none'}")
        clash = [n for n in ("w", "h", "fit") if n in params]
        if clash:
            raise BadParameter(f"p= sets the size; it cannot be combined with {', '.join(clash)}")
        w, h, fit, fmt, q = preset.w, preset.h, preset.fit, preset.fmt, preset.q
        if snapping:  # start-up let presets off the lists through to snap here (config._presets_on_the_lists)
            w = w and on_list("w", w, v.widths, size_snap)
            h = h and on_list("h", h, v.heights, size_snap)
            q = q and on_list("q", q, v.qualities, quality_snap, MAX_QUALITY)
    if "w" in params:
        w = _allowed_int("w", params["w"], v.widths, signed.max_width if signed else None, size_snap)
    if "h" in params:
        h = _allowed_int("h", params["h"], v.heights, signed.max_height if signed else None, size_snap)
    if "fit" in params:
        fit = _FIT_ALIASES.get(params["fit"].lower(), "")
        if fit not in FITS:
            raise BadParameter(f"fit={params['fit']} is not allowed; allowed values: inside (contain), cover (crop)")
    if "fmt" in params:
        chosen = _FMT_ALIASES.get(params["fmt"].lower())
        if chosen is None or (chosen != "auto" and chosen not in v.formats):
            raise BadParameter(f"fmt={params['fmt']} is not allowed; allowed values: auto, {listing(v.formats)}")
        fmt = None if chosen == "auto" else chosen
    if "q" in params:
        q = _allowed_int("q", params["q"], v.qualities, MAX_QUALITY if signed else None, quality_snap, MAX_QUALITY)
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

