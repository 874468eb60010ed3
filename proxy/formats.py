"""One descriptor per image format: every fact the service knows about a format, in one place.

Config validation, decoding, sanitizing, rendering, variant keys, negotiation and
the `<picture>` document all read these descriptors instead of keeping tables of
their own, so adding a format (or correcting a limit) is a change here, plus
its encoder in imaging.render when it is an output.
Nothing in this module imports Pillow: it is plain data, safe for any layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# How much transparency a format keeps: an alpha channel, on/off pixels only (a palette
# entry, as in GIF), or none (the image is composited onto render.background).
Transparency = Literal["alpha", "binary", "none"]


@dataclass(frozen=True)
class Format:
    name: str  # our name: in config, in `fmt=`, in metadata
    mime: str
    extension: str  # of stored variants
    pil: tuple[str, ...]  # the Pillow plugin ids allowed to open it; the first also writes it
    accepted: bool  # may be uploaded (sanitize.formats chooses among these)
    output: bool  # may be rendered as a variant (variants.formats chooses among these)
    pil_variants: tuple[str, ...] = ()  # other `Image.format` values its openers report
    single_frame: bool = False  # extra frames or pages are no animation: the first is the image, the file one frame
    quality: bool = False  # the encoder takes a quality (`q=`); lossless formats ignore it
    animates: bool = False  # a variant in it can keep every frame of an animation
    transparency: Transparency = "alpha"
    explicit_accept: bool = False  # not every browser decodes it: sent only when Accept names its type
    stored_as: str = ""  # the format a re-encode at upload writes; "" = itself
    # The largest width or height its encoder writes and its decoders read back (measured with
    # Pillow 13: libwebp 16383, libjpeg-turbo 65500, GIF's 16-bit fields, libavif's decoder 32768).
    max_side: int = 65535
    max_pixels: int = 0  # the largest width x height it holds (libavif's decoder: 16384²); 0: no limit of its own
    aliases: tuple[str, ...] = ()  # other spellings accepted in `fmt=`

    @property
    def store_format(self) -> str:
        return self.stored_as or self.name

    def holds(self, width: int, height: int) -> bool:
        """Whether an image of width x height can be written in this format (and read back)."""
        return max(width, height) <= self.max_side and (not self.max_pixels or width * height <= self.max_pixels)

    def limit(self) -> str:
        """The limit in words, for the error that names it."""
        area = f" and {self.max_pixels} pixels" if self.max_pixels else ""
        return f"{self.name} holds at most {self.max_side} pixels a side{area}"

    @property
    def pil_save(self) -> str:
        """The Pillow format name its writer is registered under."""
        return self.pil[0]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        # MPO: camera JPEGs with preview frames, which the JPEG opener returns (the previews are no animation)
        Format(
            "jpeg",
            "image/jpeg",
            "jpg",
            ("JPEG",),
            accepted=True,
            output=True,
            pil_variants=("MPO",),
            single_frame=True,
            quality=True,
            transparency="none",
            max_side=65500,
            aliases=("jpg",),
        ),
        Format("png", "image/png", "png", ("PNG",), accepted=True, output=True, max_side=2**31 - 1),
        Format(
            "webp",
            "image/webp",
            "webp",
            ("WEBP",),
            accepted=True,
            output=True,
            quality=True,
            animates=True,
            explicit_accept=True,
            max_side=16383,
        ),
        Format("gif", "image/gif", "gif", ("GIF",), accepted=True, output=True, animates=True, transparency="binary"),
        Format(
            "avif",
            "image/avif",
            "avif",
            ("AVIF",),
            accepted=True,
            output=True,
            quality=True,
            explicit_accept=True,
            max_side=32768,
            max_pixels=16384 * 16384,
        ),
        # iPhone photos, via the pillow-heif plugin; stored as JPEG (see imaging.sanitize); an image
        # collection (burst, depth map) is not an animation
        Format(
            "heic", "image/heic", "heic", ("HEIF",), accepted=True, output=False, single_frame=True, stored_as="jpeg"
        ),
        Format("bmp", "image/bmp", "bmp", ("BMP",), accepted=True, output=False, stored_as="png"),
        # pages of a multi-page TIFF are a document, not an animation: the first page is the image
        Format("tiff", "image/tiff", "tif", ("TIFF",), accepted=True, output=False, single_frame=True, stored_as="png"),
    )
}

# variants.formats' choices and default, best first (the order negotiation prefers).
OUTPUT_FORMATS: tuple[str, ...] = ("avif", "webp", "jpeg", "png", "gif")
INPUT_FORMATS: tuple[str, ...] = tuple(f.name for f in FORMATS.values() if f.accepted)
assert set(OUTPUT_FORMATS) == {f.name for f in FORMATS.values() if f.output}

# The best output every browser decodes, and so the one variants.formats must include.
FALLBACK: str = next(name for name in OUTPUT_FORMATS if not FORMATS[name].explicit_accept)

# Every spelling `fmt=` takes for an output format -> its name.
OUTPUT_SPELLINGS: dict[str, str] = {
    spelling: f.name for f in FORMATS.values() if f.output for spelling in (f.name, *f.aliases)
}

_BY_PIL: dict[str, Format] = {pil: f for f in FORMATS.values() for pil in (*f.pil, *f.pil_variants)}


def from_pil(pil_format: str | None) -> Format:
    """The format of an image Pillow opened (`Image.format`), e.g. MPO -> jpeg.

    Only called on images opened through the `pil` allow-lists above, so every value is known.
    """
    return _BY_PIL[pil_format or ""]
