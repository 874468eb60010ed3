"""One descriptor per image format: every fact the service knows about a format, in one place.

Config validation, decoding, sanitizing, rendering, variant keys, negotiation and
the `<picture>` document all read these descriptors instead of keeping tables of
their own, so adding a format (or correcting a limit) is a change here alone.
Nothing in this module imports Pillow: it is plain data, safe for any layer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    name: str  # our name: in config, in `fmt=`, in metadata
    mime: str
    extension: str  # of stored variants and working copies
    pil: tuple[str, ...]  # the Pillow plugin ids allowed to open it (MPO comes through the JPEG opener)
    accepted: bool  # may be uploaded (sanitize.formats chooses among these)
    output: bool  # may be rendered as a variant (variants.formats chooses among these)
    quality: bool = False  # the encoder takes a quality (`q=`); lossless formats ignore it
    animates: bool = False  # a variant in it can keep every frame of an animation
    alpha: bool = True  # it can carry transparency
    stored_as: str = ""  # the format a re-encode at upload writes; "" = itself
    max_side: int = 65535  # the largest width or height its encoder writes
    aliases: tuple[str, ...] = ()  # other spellings accepted in `fmt=`

    @property
    def store_format(self) -> str:
        return self.stored_as or self.name


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("jpeg", "image/jpeg", "jpg", ("JPEG",), accepted=True, output=True, quality=True, alpha=False,
           aliases=("jpg",)),
    Format("png", "image/png", "png", ("PNG",), accepted=True, output=True, max_side=2**31 - 1),
    Format("webp", "image/webp", "webp", ("WEBP",), accepted=True, output=True, quality=True, animates=True,
           max_side=16383),
    Format("gif", "image/gif", "gif", ("GIF",), accepted=True, output=True, animates=True),
    Format("avif", "image/avif", "avif", ("AVIF",), accepted=True, output=True, quality=True),
    # iPhone photos, via the pillow-heif plugin; stored as JPEG (see imaging.sanitize)
    Format("heic", "image/heic", "heic", ("HEIF",), accepted=True, output=False, stored_as="jpeg"),
    Format("bmp", "image/bmp", "bmp", ("BMP",), accepted=True, output=False, stored_as="png"),
    Format("tiff", "image/tiff", "tif", ("TIFF",), accepted=True, output=False, stored_as="png"),
)}

# variants.formats' choices and default, best first (the order negotiation prefers).
OUTPUT_FORMATS: tuple[str, ...] = ("avif", "webp", "jpeg", "png", "gif")
INPUT_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS.values() if f.accepted)
assert set(OUTPUT_FORMATS) == {f.name for f in FORMATS.values() if f.output}

