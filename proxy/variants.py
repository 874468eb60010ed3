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

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

from proxy import crops
from proxy.config import FITS, Preset, SecuritySettings, VariantSettings
from proxy.formats import OUTPUT_SPELLINGS
from proxy.negotiate import snap_width
from proxy.params import BadParameter as BadParameter  # part of this module's API: parse_query raises it
from proxy.params import listing, normalize_params

T = TypeVar("T")
_FIT_ALIASES = {
    "inside": "inside",
    "contain": "inside",
    "max": "inside",
    "cover": "cover",
    "crop": "cover",
    "fill": "cover",
    "pad": "pad",
}
_FMT_ALIASES = OUTPUT_SPELLINGS | {"auto": "auto"}
MAX_QUALITY = 100
AUTO = "auto"  # q=auto: the quality is found per variant while rendering (imaging.render)
# What a preset fixes and a URL with p= may not change; crop= and fp= are about the image, so they may.
_PRESET_SETS = ("w", "h", "fit", "g", "bg")

Snap = Callable[[int, tuple[int, ...]], int]  # (asked, allowed) -> the allowed value served


@dataclass(frozen=True)
class VariantRequest:
    """A validated request; w and h already multiplied by dpr. fmt None means negotiate."""

    w: int | None
    h: int | None
    fit: str
    fmt: str | None
    q: int | str | None  # a quality, AUTO, or None: the configured default
    max_pixels: int | None = None  # set for signed requests: the output's hard cap
    g: str = "center"  # a compass gravity or "auto" (proxy.crops), for fit=cover
    fp: tuple[Fraction, Fraction] | None = None  # a focal point for fit=cover, fractions of the original
    crop: tuple[Fraction, Fraction, Fraction, Fraction] | None = None  # x, y, w, h of the original, cut first
    bg: str | None = None  # fit=pad's canvas (a label of proxy.crops); None: render.background


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


def _allowed_int(
    name: str, text: str, allowed: tuple[int, ...], cap: int | None, snap: Snap | None, top: int | None = None
) -> int:
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


def _word(name: str, text: str, parse: Callable[[str], T], form: str) -> T:
    """A value read by one of proxy.crops' parsers; its complaint, with the allowed form, as a BadParameter."""
    try:
        return parse(text)
    except ValueError as exc:
        raise BadParameter(f"{name}={text} is not allowed: {exc}; the form is {form}") from None


def _crops(params: dict[str, str], preset: Preset | None, v: VariantSettings) -> dict[str, object]:
    """g, fp, crop and bg from the URL, else from the preset, checked against the grid and the lists."""
    steps = v.crop_steps
    step = f"{Fraction(1, steps)}"
    written = {k: getattr(preset, k) for k in ("g", "fp", "crop", "bg") if preset and getattr(preset, k)}
    written |= {k: params[k] for k in ("g", "fp", "crop", "bg") if k in params}
    found: dict[str, object] = {}
    if "g" in written:
        found["g"] = _word("g", written["g"], crops.gravity, f"g=<{'|'.join(crops.GRAVITY_NAMES)}>")
    if "fp" in written:
        found["fp"] = _word(
            "fp",
            written["fp"],
            lambda t: crops.fractions(t, 2, steps),
            f"fp=<x>,<y>, fractions of the width and height from 0 to 1 in steps of {step} (e.g. fp=0.5,0.25)",
        )
    if "crop" in written:
        found["crop"] = _word(
            "crop",
            written["crop"],
            lambda t: crops.crop_box(t, steps),
            f"crop=<x>,<y>,<w>,<h>, fractions of the width and height from 0 to 1 in steps "
            f"of {step}, w and h above 0, x+w and y+h at most 1 (e.g. crop=0.1,0,0.5,0.8)",
        )
    if "bg" in written:
        label = _word("bg", written["bg"], crops.background, "bg=<rrggbb> or bg=transparent")
        if label not in v.backgrounds:
            raise BadParameter(f"bg={written['bg']} is not allowed; allowed values: {listing(v.backgrounds)}")
        found["bg"] = label
    return found


def parse_query(
    items: Iterable[tuple[str, str]], v: VariantSettings, signed: SecuritySettings | None = None
) -> VariantRequest:
    """Validate query (name, value) pairs into a VariantRequest; raises BadParameter.

    `signed` is given only after the request's signature was verified: sizes,
    qualities and densities may then leave the allow-list, within its hard caps.
    """
    params = normalize_params(items)
    snapping = v.snap == "up"
    size_snap, quality_snap = (snap_width, nearest) if snapping else (None, None)

    w = h = preset = None
    q: int | str | None = None
    fit, fmt = "inside", None
    if "p" in params:
        preset = v.presets.get(params["p"])
        if preset is None:
            raise BadParameter(f"unknown preset {params['p']!r}; presets: {listing(sorted(v.presets)) or 'none'}")
        clash = [n for n in _PRESET_SETS if n in params]
        if clash:
            raise BadParameter(f"p= sets the size and its placement; it cannot be combined with {', '.join(clash)}")
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
            raise BadParameter(
                f"fit={params['fit']} is not allowed; allowed values: inside (contain), cover (crop), pad"
            )
    if "fmt" in params:
        chosen = _FMT_ALIASES.get(params["fmt"].lower())
        if chosen is None or (chosen != "auto" and chosen not in v.formats):
            raise BadParameter(f"fmt={params['fmt']} is not allowed; allowed values: auto, {listing(v.formats)}")
        fmt = None if chosen == "auto" else chosen
    if "q" in params and params["q"].lower() == AUTO:
        q = AUTO
    elif "q" in params:
        q = _allowed_int("q", params["q"], v.qualities, MAX_QUALITY if signed else None, quality_snap, MAX_QUALITY)
    placed = _crops(params, preset, v)
    if fit != "cover" and ("fp" in placed or placed.get("g", "center") != "center"):
        raise BadParameter("g= and fp= place a cover crop; they need fit=cover with w and h")
    if "fp" in placed and "g" in params:
        raise BadParameter("give g= or fp=, not both: fp= is a focal point of its own")
    if fit != "pad" and "bg" in placed:
        raise BadParameter("bg= is the canvas colour of fit=pad; add fit=pad with w and h")
    if fit == "pad" and (w is None or h is None):
        raise BadParameter("fit=pad pads to exactly w x h; it needs both w and h")
    if w is None and h is None:  # no size: the largest allowed box, never more than the original
        w, h = max(v.widths), max(v.heights)
    if "dpr" in params:
        dpr = _dpr(params["dpr"], v.dprs, signed is not None)
        w = round(w * dpr) if w else None
        h = round(h * dpr) if h else None
    if signed is None:
        return VariantRequest(w=w, h=h, fit=fit, fmt=fmt, q=q, **placed)  # type: ignore[arg-type]
    if (w or 0) > signed.max_width or (h or 0) > signed.max_height:
        raise BadParameter(
            f"the size after dpr is outside the hard cap for signed URLs ({signed.max_width}x{signed.max_height})"
        )
    return VariantRequest(w=w, h=h, fit=fit, fmt=fmt, q=q, max_pixels=signed.max_pixels, **placed)  # type: ignore[arg-type]
