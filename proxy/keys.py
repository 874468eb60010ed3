"""Where everything lives in the store: the one place that builds (and parses) storage keys.

    originals/<id>              the sanitized original
    originals/<id>.json         its metadata (an image exists once this does)
    originals/<id>.work-WxH     its working copies (see imaging.working)
    variants/<id>/<name>        rendered variants, <name> e.g. 400x267-q80.webp

The same keys are used on local disk and in S3 (under the bucket's prefix). The
service writes and deletes by them, `gc` lists and parses them, and the tests read
what the service wrote through them, so a change of layout is a change here.
"""

from __future__ import annotations

from proxy.formats import FORMATS
from proxy.imaging.geometry import Geometry

VARIANTS = "variants/"  # every variant of every image is under this prefix
_ORIGINALS = "originals/"


def original(image_id: str) -> str:
    return f"{_ORIGINALS}{image_id}"


def metadata(image_id: str) -> str:
    return f"{_ORIGINALS}{image_id}.json"


def working_copy(image_id: str, size: tuple[int, int]) -> str:
    return f"{_ORIGINALS}{image_id}.work-{size[0]}x{size[1]}"


def variant_prefix(image_id: str) -> str:
    """Every stored variant of one image, and nothing of another's (the trailing "/")."""
    return f"{VARIANTS}{image_id}/"


def variant(image_id: str, name: str) -> str:
    return variant_prefix(image_id) + name


def parse_variant(key: str) -> tuple[str, str]:
    """(image id, variant name) of a key under VARIANTS, as gc lists them."""
    if not key.startswith(VARIANTS):
        raise ValueError(f"not a variant key: {key!r}")
    image_id, _, name = key[len(VARIANTS):].partition("/")
    return image_id, name


def variant_name(geometry: Geometry, fmt: str, quality: int, animated: bool = False,
                 target: int | None = None) -> str:
    """Canonical name of a variant: one name per distinct output.

    Formats that take no quality (PNG, GIF) leave it out, so q= cannot multiply
    their copies. Animated outputs are marked, so turning render.animation off
    or on never serves a stored variant of the other kind. A q=auto variant
    (`target`: its SSIM in thousandths) names the target instead of a quality
    (`-qauto985`): its quality is found while rendering, and a new target renders anew.
    """
    q = (f"-qauto{target}" if target is not None else f"-q{quality}") if FORMATS[fmt].quality else ""
    return f"{geometry.key}{'-anim' if animated else ''}{q}.{FORMATS[fmt].extension}"
