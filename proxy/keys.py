"""Where everything lives in the store: the one place that builds (and parses) storage keys.

    originals/<id>              the sanitized original
    originals/<id>.json         its metadata (an image exists once this does)
    originals/<id>.work-WxH     its working copies (see imaging.working)
    variants/<id>/<name>        rendered variants, <name> e.g. 400x267-q80.webp
    refs/<id>/<owner>/<ref>.json   one reference to the image, held by a token name (see proxy.references)
    deleting/<id>/<ms>-<nonce>.json   a delete of the image in progress, started at <ms> (epoch milliseconds)
    idempotency/<owner>/<ref>.json    the upload an Idempotency-Key made: its image, fingerprint and status

The same keys are used on local disk and in S3 (under the bucket's prefix). The
service writes and deletes by them, `gc` lists and parses them, and the tests read
what the service wrote through them, so a change of layout is a change here.
"""

from __future__ import annotations

from proxy.formats import FORMATS
from proxy.imaging.geometry import Geometry

VARIANTS = "variants/"  # every variant of every image is under this prefix
REFS = "refs/"  # every reference to every image
ORIGINALS = "originals/"  # every original, working copy and metadata record
_DELETING = "deleting/"
_IDEMPOTENCY = "idempotency/"
_JSON = ".json"


def original(image_id: str) -> str:
    return f"{ORIGINALS}{image_id}"


def metadata(image_id: str) -> str:
    return f"{ORIGINALS}{image_id}{_JSON}"


def working_copy(image_id: str, size: tuple[int, int]) -> str:
    return f"{ORIGINALS}{image_id}.work-{size[0]}x{size[1]}"


def variant_prefix(image_id: str) -> str:
    """Every stored variant of one image, and nothing of another's (the trailing "/")."""
    return f"{VARIANTS}{image_id}/"


def variant(image_id: str, name: str) -> str:
    return variant_prefix(image_id) + name


def parse_variant(key: str) -> tuple[str, str]:
    """(image id, variant name) of a key under VARIANTS, as gc lists them."""
    if not key.startswith(VARIANTS):
        raise ValueError(f"not a variant key: {key!r}")
    image_id, _, name = key[len(VARIANTS) :].partition("/")
    return image_id, name


def references(image_id: str) -> str:
    """Every reference to one image, of every owner (listing it counts the holders)."""
    return f"{REFS}{image_id}/"


def held_by(image_id: str, owner: str) -> str:
    """The references one owner holds to one image."""
    return f"{references(image_id)}{owner}/"


def reference(image_id: str, owner: str, ref: str) -> str:
    return f"{held_by(image_id, owner)}{ref}{_JSON}"


def parse_reference(key: str) -> tuple[str, str, str]:
    """(image id, owner, ref) of a key under REFS, as listings return them."""
    if not (key.startswith(REFS) and key.endswith(_JSON)) or key.count("/") != 3:
        raise ValueError(f"not a reference key: {key!r}")
    image_id, owner, ref = key[len(REFS) : -len(_JSON)].split("/")
    return image_id, owner, ref


def deletions(image_id: str) -> str:
    """The deletes of one image in progress (see proxy.references: uploads wait for them)."""
    return f"{_DELETING}{image_id}/"


def deletion(image_id: str, started_ms: int, nonce: str) -> str:
    return f"{deletions(image_id)}{started_ms}-{nonce}{_JSON}"


def deletion_started(key: str) -> float:
    """When the delete whose marker this is began, in epoch seconds (it is in the name: no read needed)."""
    name = key.rpartition("/")[2]
    return int(name.partition("-")[0]) / 1000


def idempotency(owner: str, ref: str) -> str:
    """The record of the keyed upload that made `ref` (a key's ref is derived from it: see proxy.references)."""
    return f"{_IDEMPOTENCY}{owner}/{ref}{_JSON}"


def parse_metadata(key: str) -> str | None:
    """The image id of a metadata key under ORIGINALS, else None (an original or a working copy)."""
    name = key[len(ORIGINALS) :] if key.startswith(ORIGINALS) else ""
    return name[: -len(_JSON)] if name.endswith(_JSON) and "/" not in name else None


def variant_name(geometry: Geometry, fmt: str, quality: int, animated: bool = False, target: int | None = None) -> str:
    """Canonical name of a variant: one name per distinct output.

    Formats that take no quality (PNG, GIF) leave it out, so q= cannot multiply
    their copies. Animated outputs are marked, so turning render.animation off
    or on never serves a stored variant of the other kind. A q=auto variant
    (`target`: its SSIM in thousandths) names the target instead of a quality
    (`-qauto985`): its quality is found while rendering, and a new target renders anew.
    """
    q = (f"-qauto{target}" if target is not None else f"-q{quality}") if FORMATS[fmt].quality else ""
    return f"{geometry.key}{'-anim' if animated else ''}{q}.{FORMATS[fmt].extension}"
