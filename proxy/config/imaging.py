"""The sections about pictures: rendering, the variant allow-list and presets, encoders, the
focal-point detector and what uploads are accepted and how they are stored (see proxy.config)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from proxy import crops
from proxy.configkeys import Colour, ConfigError, SectionCheck, choice, includes, integer, refuse_unknown, setting, text
from proxy.formats import INPUT_FORMATS, OUTPUT_FORMATS

FITS = ("inside", "cover", "pad")
# The presets a config without [variants.presets] gets (the shipped config.toml lists the same).
DEFAULT_PRESETS: dict[str, dict[str, Any]] = {
    "thumb": {"w": 160, "h": 160, "fit": "cover"},
    "small": {"w": 320},
    "medium": {"w": 800},
    "large": {"w": 1600},
}
_SIZES = (64, 96, 128, 160, 200, 240, 320, 400, 480, 560, 640, 720, 800, 960, 1080, 1200, 1280, 1440, 1600, 1920, 2048)


@dataclass(frozen=True)
class RenderSettings:
    max_concurrent: int = setting(0, "renders at once; `0`: one per CPU core", minimum=0)
    max_queue: int = setting(64, "renders that may wait for a slot; past it: 503 + `Retry-After` at once", minimum=0)
    background: Colour = setting(
        (255, 255, 255), "behind transparent pixels in JPEG output, and the canvas of `fit=pad` without `bg`"
    )
    animation: bool = setting(True, "animated originals give animated WebP/GIF variants")
    max_animation_frames: int = setting(150, "more frames than this: the first frame only")
    working_sizes: tuple[int, ...] = setting(
        (480, 800, 1280),
        "long sides of the working copies made at upload "
        "(a render starts from the smallest that holds its output); `[]`: none",
        maximum=8192,
        allow_empty=True,
    )
    large_image_pixels: int = setting(
        16_000_000,
        "decodes larger than this (after JPEG draft scaling) run one at a "
        "time per worker, bounding memory; smaller ones never wait",
    )


@dataclass(frozen=True)
class Preset:
    w: int | None = None
    h: int | None = None
    fit: str = "inside"
    fmt: str | None = None
    q: int | None = None
    g: str = "center"  # see proxy.crops for these four
    fp: str | None = None  # "x,y" as written; checked against variants.crop_steps with the other keys
    crop: str | None = None  # "x,y,w,h", likewise
    bg: str | None = None  # canonical label; None: render.background


def _crop_word(name: str, value: Any, parse: Callable[[str], Any]) -> Any:
    """A preset's value parsed by one of proxy.crops' parsers, its complaint naming the key."""
    try:
        return parse(text(name, value))
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}, got {value!r}") from None


def _preset(name: str, value: Any) -> Preset:
    """One `[variants.presets]` entry, e.g. ``{ w = 256, h = 256, fit = "cover", g = "auto" }``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table like {{ w = 320 }}")
    refuse_unknown(name, value, (f.name for f in dataclasses.fields(Preset)))
    sizes = {k: integer(f"{name}.{k}", value[k]) for k in ("w", "h", "q") if k in value}
    if "w" not in sizes and "h" not in sizes:
        raise ConfigError(f"{name}: needs w or h")
    fmt = choice(f"{name}.fmt", value.get("fmt", "auto"), OUTPUT_FORMATS + ("auto",))
    fit = choice(f"{name}.fit", value.get("fit", Preset.fit), FITS)
    words = {
        k: _crop_word(f"{name}.{k}", value[k], parse)
        for k, parse in (("g", crops.gravity), ("bg", crops.background), ("fp", str.strip), ("crop", str.strip))
        if k in value
    }
    if fit != "cover" and ("g" in words or "fp" in words):
        raise ConfigError(f'{name}: g and fp place a cover crop; they need fit = "cover"')
    if fit != "pad" and "bg" in words:
        raise ConfigError(f'{name}.bg: the colour of a pad; it needs fit = "pad"')
    if fit == "pad" and not ("w" in sizes and "h" in sizes):
        raise ConfigError(f'{name}: fit = "pad" needs both w and h')
    return Preset(
        w=sizes.get("w"), h=sizes.get("h"), q=sizes.get("q"), fit=fit, fmt=None if fmt == "auto" else fmt, **words
    )


def _backgrounds(name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    """Canonical labels (`ffffff`, `transparent`), as URLs write them."""
    return tuple(dict.fromkeys(_crop_word(f"{name}[{i}]", v, crops.background) for i, v in enumerate(values)))


def _presets(name: str, value: Any) -> dict[str, Preset]:
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table of presets")
    return {preset: _preset(f"{name}.{preset}", p) for preset, p in value.items()}


@dataclass(frozen=True)
class VariantSettings:
    widths: tuple[int, ...] = setting(_SIZES, "allowed `w`", maximum=16384)
    heights: tuple[int, ...] = setting(_SIZES, "allowed `h`", maximum=16384)
    dprs: tuple[float, ...] = setting((1.0, 1.5, 2.0, 3.0), "allowed `dpr`; must include 1", check=includes(1.0, "1"))
    qualities: tuple[int, ...] = setting((40, 50, 60, 70, 75, 80, 85, 90), "allowed `q`", maximum=100)
    formats: tuple[str, ...] = setting(
        OUTPUT_FORMATS,
        "allowed output formats; must include jpeg",
        choices=OUTPUT_FORMATS,
        check=includes("jpeg", "jpeg (the fallback every browser reads)"),
    )
    presets: Mapping[str, Preset] = setting(
        {name: Preset(**p) for name, p in DEFAULT_PRESETS.items()},
        "`p=<name>` shortcuts `{ w, h, fit, g, fp, crop, bg, fmt, q }` on the "
        'lists above (no table: the built-in ones that are); with `snap = "up"` '
        "their w, h and q snap like a request's",
        parse=_presets,
    )
    snap: str = setting(
        "up",
        "a `w`/`h` not on the lists is served as the next allowed size up (capped at the "
        "largest) and a `q` as the nearest allowed; `off`: 400",
        choices=("up", "off"),
    )
    crop_steps: int = setting(
        100,
        "`fp` and `crop` are multiples of 1/N of the original's width and height "
        "(100: two decimals); bounds the crops a URL can ask for (see Crops)",
        maximum=1000,
    )
    backgrounds: tuple[str, ...] = setting(
        (crops.TRANSPARENT, "ffffff", "000000"),
        "allowed `bg` of `fit=pad`: `rrggbb` colours (`#` optional) or `transparent` "
        "(without `bg`: `render.background`)",
        check=_backgrounds,
    )


@dataclass(frozen=True)
class EncoderSettings:
    """Default quality and speed knobs per output format (see README: encoder settings)."""

    jpeg_quality: int = setting(80, "JPEG `q` when none is asked", maximum=100)
    jpeg_progressive: bool = setting(True, "progressive JPEG (with optimized Huffman tables either way)")
    jpeg_tables: str = setting(
        "ssim",
        "luma quantisation table: `ssim` (flatter than the standard's: 0.95x the bytes at equal SSIM) or "
        "`annex-k` (libjpeg's)",
        choices=("ssim", "annex-k"),
    )
    webp_quality: int = setting(80, "WebP `q` when none is asked", maximum=100)
    webp_method: int = setting(
        2,
        "libwebp effort, fast to small (2 keeps the miss path's lead; 4: 8% fewer bytes at equal SSIM for "
        "twice the encode time; 6: 0.4% fewer than 4 at twice its time)",
        minimum=0,
        maximum=6,
    )
    avif_quality: int = setting(60, "AVIF `q` when none is asked", maximum=100)
    avif_speed: int = setting(
        6,
        "libavif (aom) speed, small to fast (6 with 4:4:4: 0.96x IPX's bytes at equal SSIM; 9 with 4:2:0 was 1.22x)",
        minimum=0,
        maximum=10,
    )
    avif_subsampling: str = setting(
        "4:4:4", "AVIF chroma subsampling (4:4:4: as sharp/IPX; full colour at edges)", choices=("4:2:0", "4:4:4")
    )
    png_compress_level: int = setting(6, "zlib level", minimum=0, maximum=9)
    auto_quality: bool = setting(
        False,
        "`q=auto` for requests without `q`: per variant, the lowest quality that keeps `auto_target` (see q=auto)",
    )
    auto_target: int = setting(
        960,
        "`q=auto`'s SSIM on luma against the pixels it encodes, in thousandths "
        "(960: 0.960, about what q80 gives a photo; the variant key names it)",
        minimum=900,
        maximum=999,
    )


@dataclass(frozen=True)
class FocusSettings:
    """Where `g=auto` crops: faces, else the most salient area, found once per image at upload."""

    detect_size: int = setting(
        384,
        "faces and saliency are looked for in a copy of about this many px squared (any aspect)",
        minimum=64,
        maximum=2048,
    )
    min_face: int = setting(20, "smallest face found, in px of that copy", minimum=12, maximum=512)
    face_neighbors: int = setting(
        5, "overlapping detections a face needs (higher: fewer false faces, more missed)", maximum=20
    )


@dataclass(frozen=True)
class SanitizeSettings:
    formats: tuple[str, ...] = setting(INPUT_FORMATS, "accepted uploads", choices=INPUT_FORMATS)
    jpeg_quality: int = setting(95, "JPEG quality when a re-encode at upload is unavoidable", maximum=100)
    webp_quality: int = setting(95, "WebP quality, likewise", maximum=100)
    avif_quality: int = setting(90, "AVIF quality, likewise", maximum=100)
    avif_speed: int = setting(
        9,
        "libavif speed of that AVIF re-encode, small to fast (9: 8x faster than Pillow's "
        "default 6 on a 12 MP photo, file 5% larger, PSNR 0.2 dB lower)",
        minimum=0,
        maximum=10,
    )


# ---------------------------------------------------------------------------
# Rules between keys, run after their section is built.


def _presets_on_the_lists(v: VariantSettings, given: Mapping[str, Any], name: str) -> VariantSettings:
    """A preset may only ask for what the lists allow. Written presets that do not are refused;
    built-in ones (no presets table written) that do not are left out. With `snap = "up"` a
    preset's w, h and q snap onto the lists like a request's (proxy.variants), so only its
    format must be listed: widths set to a framework's list (Next.js: 640, 750, 828, ...) then
    keep every preset working instead of stopping start-up."""
    snapped = ("w", "h", "q") if v.snap == "up" else ()
    kept = {}
    for preset, p in v.presets.items():
        misfits = [
            f"{k}: {value!r} is not in {name}.{listed}"
            for k, value, allowed, listed in (
                ("w", p.w, v.widths, "widths"),
                ("h", p.h, v.heights, "heights"),
                ("fmt", p.fmt, v.formats, "formats"),
                ("q", p.q, v.qualities, "qualities"),
                ("bg", p.bg, v.backgrounds, "backgrounds"),
            )
            if value is not None and value not in allowed and k not in snapped
        ]
        for k, parse in (
            ("fp", lambda t: crops.fractions(t, 2, v.crop_steps)),
            ("crop", lambda t: crops.crop_box(t, v.crop_steps)),
        ):
            written = getattr(p, k)
            if written is not None:
                _crop_word(f"{name}.presets.{preset}.{k}", written, parse)
        if not misfits:
            kept[preset] = p
        elif "presets" in given:
            raise ConfigError(f"{name}.presets.{preset}.{misfits[0]}")
    return dataclasses.replace(v, presets=kept)


CHECKS: dict[type, SectionCheck] = {VariantSettings: _presets_on_the_lists}
