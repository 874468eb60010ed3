"""Container-level metadata stripping (proxy.imaging.strip) and the upload sanitizer
(proxy.imaging.sanitize) on the real-world corpus and on generated files.

Stripping must be lossless (identical decoded pixels, same size and frames) and must leave no
EXIF, XMP, comments or text chunks behind, while ICC profiles and animation control survive.
The container checks below walk the output's segments/chunks independently of the code under test.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageSequence, PngImagePlugin, features

from proxy.config import LimitSettings, SanitizeSettings
from proxy.imaging.sanitize import sanitize
from proxy.imaging.strip import STRIPPERS, MalformedContainer, strip_gif, strip_jpeg, strip_png, strip_webp
from support.corpus import CORPUS, corpus_rows

MANIFEST = CORPUS / "MANIFEST.tsv"
needs_corpus = pytest.mark.skipif(
    not MANIFEST.is_file(), reason=f"image corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS to its path)"
)


ROWS = {row["path"]: row for row in corpus_rows()}
_OURS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
# Every corpus file of a strippable container that Pillow decodes cleanly.
STRIPPABLE = sorted(p for p, r in ROWS.items() if r["format"] in _OURS and r["decode"].startswith("ok"))
# Explicit upload formats (not the config default), so these tests need no optional Pillow plugins.
POLICY = SanitizeSettings(formats=("jpeg", "png", "webp", "gif", "avif", "bmp", "tiff"))
LIMITS = LimitSettings()


def corpus_bytes(rel: str) -> bytes:
    return (CORPUS / rel).read_bytes()


def open_bytes(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def frames_bytes(data: bytes, all_frames: bool = True) -> list[tuple[str, tuple[int, int], bytes]]:
    """(mode, size, pixels) of each decoded frame (only the first when all_frames is False)."""
    im = Image.open(io.BytesIO(data))
    out = []
    for frame in ImageSequence.Iterator(im):
        frame.load()
        out.append((frame.mode, frame.size, frame.tobytes()))
        if not all_frames:
            break
    return out


# --------------------------------------------------------------------------- independent container walkers


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of every marker segment up to the first EOI, entropy-coded data skipped."""
    assert data[:2] == b"\xff\xd8"
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while True:
        assert data[pos] == 0xFF, f"no marker at {pos}"
        while data[pos] == 0xFF:
            pos += 1
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            segments.append((marker, b""))
            assert pos == len(data), "bytes after EOI"
            return segments
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            segments.append((marker, b""))
            continue
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        segments.append((marker, data[pos + 2 : pos + length]))
        pos += length
        if marker == 0xDA:  # skip entropy-coded data to the next real marker
            while not (data[pos] == 0xFF and data[pos + 1] not in (0x00, *range(0xD0, 0xD8))):
                pos += 1


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, pos = [], 8
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        types.append(ctype)
        pos += 12 + length
    assert pos == len(data) and types[-1] == b"IEND", "bytes after IEND"
    return types


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8, "RIFF size does not match the file"
    chunks, pos = [], 12
    while pos < len(data):
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        chunks.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size & 1)
    assert pos == len(data)
    return chunks


def gif_extensions(data: bytes) -> list[tuple[int, bytes]]:
    """(label, first sub-block) of every extension block; also checks the trailer ends the file."""
    assert data[:6] in (b"GIF87a", b"GIF89a")
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    exts = []

    def skip_sub_blocks(p: int) -> int:
        while data[p]:
            p += 1 + data[p]
        return p + 1

    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            label, first = data[pos + 1], data[pos + 3 : pos + 3 + data[pos + 2]]
            exts.append((label, first))
            pos = skip_sub_blocks(pos + 2)
        else:
            assert data[pos] == 0x2C
            flags = data[pos + 9]
            pos += 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
    assert pos == len(data) - 1, "bytes after the GIF trailer"
    return exts


_JPEG_KEPT_APPS = {0xE0: (b"JFIF\x00", b"JFXX\x00"), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}
_PNG_ALLOWED = {
    b"IHDR",
    b"PLTE",
    b"IDAT",
    b"IEND",
    b"tRNS",
    b"gAMA",
    b"cHRM",
    b"sRGB",
    b"iCCP",
    b"sBIT",
    b"cICP",
    b"mDCV",
    b"cLLI",
    b"acTL",
    b"fcTL",
    b"fdAT",
}
_WEBP_ALLOWED = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}


def assert_no_metadata(fmt: str, data: bytes) -> None:
    """No EXIF, XMP, IPTC, comment or text container is left, by walking the structure and by bytes."""
    assert b"http://ns.adobe.com/xap" not in data
    assert b"Exif\x00\x00" not in data
    if fmt == "jpeg":
        for marker, payload in jpeg_segments(data):
            assert marker != 0xFE, "COM segment left"
            if 0xE0 <= marker <= 0xEF:
                assert marker in _JPEG_KEPT_APPS and payload.startswith(_JPEG_KEPT_APPS[marker]), (
                    f"APP{marker - 0xE0} {payload[:12]!r} left"
                )
    elif fmt == "png":
        assert set(png_chunks(data)) <= _PNG_ALLOWED
    elif fmt == "webp":
        chunks = webp_chunks(data)
        assert {c for c, _ in chunks} <= _WEBP_ALLOWED
        for fourcc, payload in chunks:
            if fourcc == b"VP8X":
                assert payload[0] & 0x0C == 0, "VP8X still announces EXIF/XMP"
    elif fmt == "gif":
        for label, first in gif_extensions(data):
            assert label == 0xF9 or (label == 0xFF and first in (b"NETSCAPE2.0", b"ANIMEXTS1.0")), (
                f"extension 0x{label:02x} {first!r} left"
            )
    else:
        raise AssertionError(fmt)


# --------------------------------------------------------------------------- corpus: strip_*


@needs_corpus
@pytest.mark.parametrize("rel", STRIPPABLE)
def test_strip_keeps_pixels_size_and_frames(rel: str) -> None:
    """Stripping is lossless: same size, same decoded pixels (every frame of an animation)."""
    row = ROWS[rel]
    data = corpus_bytes(rel)
    out = STRIPPERS[_OURS[row["format"]]](data)
    before, after = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(out))  # headers; pixels below
    assert after.size == before.size
    mpo = row["format"] == "MPO"  # the preview frame is dropped, see test_mpo_becomes_a_plain_jpeg
    assert frames_bytes(out, not mpo) == frames_bytes(data, not mpo)
    if not mpo:
        assert getattr(after, "n_frames", 1) == getattr(before, "n_frames", 1)
    assert after.format == ("JPEG" if mpo else before.format)


@needs_corpus
@pytest.mark.parametrize("rel", STRIPPABLE)
def test_strip_leaves_no_metadata(rel: str) -> None:
    """No EXIF/XMP/IPTC/COM/text survives; the file's own metadata (per MANIFEST) was really there."""
    row = ROWS[rel]
    data = corpus_bytes(rel)
    out = STRIPPERS[_OURS[row["format"]]](data)
    assert_no_metadata(_OURS[row["format"]], out)
    after = Image.open(io.BytesIO(out))  # metadata is parsed from the headers, no decode needed
    assert not after.getexif()
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"} & set(after.info)
    if "exif" in row["metadata"].split(","):
        assert b"Exif\x00\x00" in data and len(out) < len(data)
    if "xmp" in row["metadata"].split(","):
        assert b"http://ns.adobe.com/xap" in data


@needs_corpus
@pytest.mark.parametrize("rel", ["formats/jpeg_icc_adobe_rgb.jpg", "formats/jpeg_progressive_big_icc.jpg"])
def test_jpeg_icc_profile_survives_byte_identical(rel: str) -> None:
    """The ICC profile (also one split over 7 APP2 segments) is kept exactly, so colours do not change."""
    data = corpus_bytes(rel)
    icc = Image.open(io.BytesIO(data)).info["icc_profile"]
    assert len(icc) > 500
    assert Image.open(io.BytesIO(strip_jpeg(data))).info.get("icc_profile") == icc


@needs_corpus
def test_jpeg_grayscale_comment_is_dropped() -> None:
    """The corpus's COM segment is removed."""
    data = corpus_bytes("formats/jpeg_grayscale.jpg")
    assert any(m == 0xFE for m, _ in jpeg_segments(data))
    assert not any(m == 0xFE for m, _ in jpeg_segments(strip_jpeg(data)))


@needs_corpus
def test_cmyk_adobe_marker_is_kept() -> None:
    """Adobe APP14 (colour transform) is kept, so the CMYK JPEG decodes to the same pixels."""
    out = strip_jpeg(corpus_bytes("formats/jpeg_cmyk_adobe.jpg"))
    assert any(m == 0xEE for m, _ in jpeg_segments(out))
    assert open_bytes(out).mode == "CMYK"


@needs_corpus
def test_mpo_becomes_a_plain_single_frame_jpeg() -> None:
    """A camera MPO loses its preview frame and MPF data: Pillow then sees a plain one-frame JPEG."""
    data = corpus_bytes("photos/sony_hdr-as300_gps_8mp_mpo.jpg")
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out = strip_jpeg(data)
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG"
    assert getattr(im, "n_frames", 1) == 1
    assert im.size == (3840, 2160)
    assert b"MPF\x00" not in out
    assert len(out) < len(data) * 0.8  # the second (1920x1080) frame is gone


@needs_corpus
@pytest.mark.parametrize(
    ("rel", "strip"),
    [
        ("hostile/jpeg_truncated.jpg", strip_jpeg),
        ("hostile/jpeg_truncated_pixel6_gps.jpg", strip_jpeg),
        ("hostile/png_truncated.png", strip_png),
    ],
)
def test_truncated_files_raise_malformed_container(rel: str, strip: Callable[[bytes], bytes]) -> None:
    """A cut-off file is refused by the container parser instead of being stored half."""
    with pytest.raises(MalformedContainer):
        strip(corpus_bytes(rel))


# --------------------------------------------------------------------------- generated files


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def gradient(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    im = Image.new("RGB", size)
    im.putdata([(x * 4 % 256, y * 5 % 256, (x * y) % 256) for y in range(size[1]) for x in range(size[0])])
    return im.convert(mode)


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0112] = 1  # Orientation
    exif.get_ifd(0x8825)[2] = (51.0, 30.0, 0.0)  # GPSLatitude
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:xmp="http://ns.adobe.com/xap/1.0/"/></x:xmpmeta>'


def test_generated_jpeg_loses_exif_xmp_and_comment_keeps_icc() -> None:
    """A JPEG carrying EXIF+GPS, XMP, a comment and an ICC profile keeps only pixels and ICC."""
    buf = io.BytesIO()
    gradient().save(buf, "JPEG", exif=exif_with_gps(), xmp=XMP, comment="secret", icc_profile=srgb_icc())
    data = buf.getvalue()
    assert b"Exif\x00\x00" in data and b"secret" in data and b"ns.adobe.com/xap" in data
    out = strip_jpeg(data + b"trailing junk")
    assert_no_metadata("jpeg", out)
    assert b"secret" not in out
    assert open_bytes(out).info.get("icc_profile") == srgb_icc()
    assert frames_bytes(out) == frames_bytes(data)


def test_generated_png_loses_text_and_exif_chunks_keeps_icc_and_transparency() -> None:
    """tEXt, zTXt, iTXt (XMP), eXIf and unknown private chunks go; iCCP, PLTE and tRNS stay."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret")
    info.add_text("Author", "someone", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add(b"prVt", b"private data")
    im = gradient("P")
    buf = io.BytesIO()
    im.save(buf, "PNG", pnginfo=info, exif=exif_with_gps(), icc_profile=srgb_icc(), transparency=0)
    data = buf.getvalue()
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"prVt", b"iCCP", b"tRNS"} <= set(png_chunks(data))
    out = strip_png(data + b"after IEND")
    assert_no_metadata("png", out)
    assert {b"iCCP", b"PLTE", b"tRNS"} <= set(png_chunks(out))
    after = open_bytes(out)
    assert after.info.get("icc_profile") == srgb_icc()
    assert after.info.get("transparency") == 0
    assert frames_bytes(out) == frames_bytes(data)


def test_generated_webp_loses_exif_and_xmp_and_fixes_the_header() -> None:
    """EXIF and XMP chunks go, VP8X no longer announces them, the RIFF size is right, ICC stays."""
    buf = io.BytesIO()
    gradient("RGBA").save(buf, "WEBP", lossless=True, exif=exif_with_gps().tobytes(), xmp=XMP, icc_profile=srgb_icc())
    data = buf.getvalue()
    assert {b"EXIF", b"XMP "} <= {c for c, _ in webp_chunks(data)}
    out = strip_webp(data)
    assert_no_metadata("webp", out)
    after = open_bytes(out)
    assert after.info.get("icc_profile") == srgb_icc()
    assert "exif" not in after.info and "xmp" not in after.info
    assert frames_bytes(out) == frames_bytes(data)


def gif_with_comment_and_xmp() -> bytes:
    """A 3-frame looping GIF with a comment extension and an XMP application extension."""
    frames = [gradient("P").rotate(angle) for angle in (0, 90, 180)]
    buf = io.BytesIO()
    frames[0].save(
        buf, "GIF", save_all=True, append_images=frames[1:], duration=[70, 80, 90], loop=0, comment=b"secret comment"
    )
    data = buf.getvalue()
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    blocks = [XMP[i : i + 60] for i in range(0, len(XMP), 60)]
    xmp_ext = b"\x21\xff\x0bXMP DataXMP" + b"".join(bytes((len(b),)) + b for b in blocks) + b"\x00"
    return data[:pos] + xmp_ext + data[pos:]


def test_generated_gif_loses_comment_and_xmp_keeps_every_frame() -> None:
    """Comment and XMP extensions go; all frames, their pixels, durations and the loop stay."""
    data = gif_with_comment_and_xmp()
    labels = {label for label, _ in gif_extensions(data)}
    assert 0xFE in labels and b"secret comment" in data and b"XMP DataXMP" in data
    out = strip_gif(data)
    assert_no_metadata("gif", out)
    assert b"secret comment" not in out and b"XMP DataXMP" not in out
    before, after = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(out))
    assert after.n_frames == before.n_frames == 3
    assert "comment" not in after.info
    assert after.info.get("loop") == 0
    assert frames_bytes(out) == frames_bytes(data)
    durations = []
    for frame in ImageSequence.Iterator(after):
        durations.append(frame.info["duration"])
    assert durations == [70, 80, 90]


@pytest.mark.parametrize(
    ("strip", "data"),
    [
        (strip_jpeg, b""),
        (strip_jpeg, b"\x89PNG\r\n\x1a\n"),
        (strip_jpeg, b"\xff\xd8\xff\xe1\xff\xff"),
        (strip_png, b"\xff\xd8\xff"),
        (strip_png, b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"),
        (strip_webp, b"RIFF\x00\x00\x00\x00WEBX"),
        (strip_webp, b"RIFF\xff\x00\x00\x00WEBPVP8 \xff\xff\x00\x00"),
        (strip_gif, b"GIF89a"),
        (strip_gif, b"GIF89a\x01\x00\x01\x00\x00\x00\x00\x2c"),
    ],
)
def test_broken_structure_raises_malformed_container(strip: Callable[[bytes], bytes], data: bytes) -> None:
    """Wrong signatures, lengths past the end and missing terminators are MalformedContainer, not other errors."""
    with pytest.raises(MalformedContainer):
        strip(data)


# --------------------------------------------------------------------------- sanitize()


GPS_PHOTOS = sorted(p for p, r in ROWS.items() if r["has_gps"] == "yes" and r["decode"].startswith("ok"))


@needs_corpus
@pytest.mark.parametrize("rel", GPS_PHOTOS)
def test_sanitize_removes_gps(rel: str) -> None:
    """Photos with GPS come out with no EXIF at all (so no location)."""
    if ROWS[rel]["format"] == "AVIF" and not features.check("avif"):
        pytest.skip("this Pillow has no AVIF support")
    data = corpus_bytes(rel)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825) or ROWS[rel]["format"] == "AVIF"
    clean = sanitize(data, POLICY, LIMITS)
    assert b"Exif" not in clean.data
    stored = open_bytes(clean.data)
    assert len(stored.getexif()) == 0
    assert not stored.getexif().get_ifd(0x8825)
    assert (clean.width, clean.height) == stored.size


@needs_corpus
@pytest.mark.parametrize("turn", range(2, 9))
def test_sanitize_applies_orientation(turn: int) -> None:
    """orientation_2..8 come out upright at 1800x1200, with pixels matching Pillow's exif_transpose and
    no orientation tag left (so nothing rotates them twice)."""
    data = corpus_bytes(f"photos/orientation_{turn}.jpg")
    clean = sanitize(data, POLICY, LIMITS)
    assert (clean.format, clean.width, clean.height, clean.frames) == ("jpeg", 1800, 1200, 1)
    stored = open_bytes(clean.data)
    assert stored.size == (1800, 1200)
    assert 0x0112 not in stored.getexif()
    reference = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))

    def thumb(im: Image.Image) -> Image.Image:
        return im.convert("L").resize((90, 60), Image.Resampling.BOX)

    # Re-encoding at q95 moves pixels by ~1 level; any wrong flip or turn moves the digit by > 100.
    assert ImageChops.difference(thumb(stored), thumb(reference)).getextrema()[1] <= 16


@needs_corpus
def test_sanitize_upright_jpeg_is_stripped_losslessly() -> None:
    """Orientation 1 needs no pixel change: the stored bytes are the container-stripped upload."""
    data = corpus_bytes("photos/orientation_1.jpg")
    clean = sanitize(data, POLICY, LIMITS)
    assert clean.data == strip_jpeg(data)
    assert (clean.width, clean.height) == (1800, 1200)


@needs_corpus
def test_sanitize_stores_bmp_as_png() -> None:
    """BMP uploads are stored as lossless PNG with the same pixels."""
    data = corpus_bytes("formats/bmp_24bit.bmp")
    clean = sanitize(data, POLICY, LIMITS)
    assert clean.format == "png"
    stored = open_bytes(clean.data)
    assert stored.format == "PNG"
    assert stored.size == (clean.width, clean.height) == (128, 128)
    assert stored.convert("RGB").tobytes() == open_bytes(data).convert("RGB").tobytes()


@needs_corpus
def test_sanitize_accepts_invalid_orientation_zero_unchanged() -> None:
    """Orientation 0 is invalid and treated as upright: accepted, same size, pixels untouched."""
    data = corpus_bytes("hostile/jpeg_orientation_0_invalid.jpg")
    clean = sanitize(data, POLICY, LIMITS)
    assert (clean.format, clean.width, clean.height) == ("jpeg", 1800, 1200)
    assert frames_bytes(clean.data) == frames_bytes(data)
    assert b"Exif" not in clean.data


@needs_corpus
def test_sanitize_mpo_is_stored_as_single_frame_jpeg() -> None:
    """The MPO camera photo is stored as a one-frame JPEG (frames == 1: it is not an animation)."""
    clean = sanitize(corpus_bytes("photos/sony_hdr-as300_gps_8mp_mpo.jpg"), POLICY, LIMITS)
    assert (clean.format, clean.frames, clean.width, clean.height) == ("jpeg", 1, 3840, 2160)
    assert Image.open(io.BytesIO(clean.data)).format == "JPEG"


def test_sanitize_generated_gif_with_comment_keeps_frames() -> None:
    """An animated GIF upload keeps all frames and loses its comment and XMP."""
    clean = sanitize(gif_with_comment_and_xmp(), POLICY, LIMITS)
    assert (clean.format, clean.frames) == ("gif", 3)
    assert_no_metadata("gif", clean.data)


def transparent_palette_file(fmt: str) -> bytes:
    """An 8x8 palette image, left half opaque green, right half transparent, with its end marker cut off
    (PNG without IEND, GIF without trailer): Pillow still decodes it, our container parser refuses it,
    so sanitize() takes the re-encode fallback."""
    im = Image.new("P", (8, 8), 0)
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 4, 8))
    buf = io.BytesIO()
    im.save(buf, fmt, transparency=0)
    data = buf.getvalue()
    data = data[:-12] if fmt == "PNG" else data[:-1]
    with pytest.raises(MalformedContainer):
        STRIPPERS[fmt.lower()](data)
    return data


def assert_still_transparent(data: bytes) -> None:
    clean = sanitize(data, POLICY, LIMITS)
    assert clean.has_alpha
    stored = open_bytes(clean.data).convert("RGBA")
    assert stored.getpixel((1, 0)) == (0, 255, 0, 255)
    assert stored.getpixel((6, 0))[3] == 0, "transparent pixel became opaque"


def test_sanitize_png_fallback_keeps_palette_transparency() -> None:
    """A transparent palette PNG that takes the re-encode fallback stays transparent."""
    assert_still_transparent(transparent_palette_file("PNG"))


def test_sanitize_gif_fallback_keeps_transparency() -> None:
    """A transparent GIF that takes the re-encode fallback stays transparent."""
    assert_still_transparent(transparent_palette_file("GIF"))
