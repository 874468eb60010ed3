"""A generated wild-file corpus: the classes of real-world files that broke the service, made on the spot.

Each maker returns the bytes of one file (deterministic: the same bytes every run), built
with Pillow plus the few container edits Pillow will not write itself: a PNG whose
compressed stream breaks after valid rows, TIFFs in every mode Pillow decodes, TIFFs
whose pages differ in size, GIFs whose frames reach past the logical screen, images taller
than WebP can hold. `data_stream` finds the compressed pixel data inside a file of any
accepted format, for the fuzz stage that mutates there and not in the headers.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image, ImageChops, ImageCms, TiffImagePlugin

import proxy.imaging.decode  # noqa: F401 - registers the HEIF opener (and writer), as the service does

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RED, GREEN, BLUE, WHITE = (220, 30, 40), (30, 180, 60), (40, 60, 220), (255, 255, 255)
LIGHT, DARK = 200, 40  # the grey levels of the grey-mode samples


def encoded(im: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def picture(size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A small photo-like RGB picture with detail everywhere (so every encoder has real data to write)."""
    w, h = size
    detail = Image.effect_mandelbrot(size, (-2.0, -1.2, 0.8, 1.2), 60)
    ramp = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (detail, ramp, ImageChops.invert(ramp).rotate(90).resize(size)))


def halves(size: tuple[int, int], left: tuple[int, int, int], right: tuple[int, int, int]) -> Image.Image:
    """Left half one colour, right half another: the colours a mode's conversion must keep."""
    im = Image.new("RGB", size, right)
    im.paste(left, (0, 0, size[0] // 2, size[1]))
    return im


# --------------------------------------------------------------------------- PNG


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk of a well-formed PNG."""
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append((kind, data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_from_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(png_chunk(kind, payload) for kind, payload in chunks)


def png_with_corrupt_idat(
    size: tuple[int, int] = (200, 40), good_rows: int = 28, exif_orientation: int | None = None
) -> bytes:
    """A PNG whose first `good_rows` rows decode and whose compressed stream then turns to garbage.

    Headers and CRCs are valid, so only a full decode finds it: Pillow stops with "broken
    data stream". With `exif_orientation`, an eXIf chunk follows the pixels, which is where
    Pillow's getexif() has to decode the image to find it.
    """
    w, h = size
    rows = picture(size).tobytes()
    raw = b"".join(b"\x00" + rows[y * w * 3 : (y + 1) * w * 3] for y in range(h))
    compressor = zlib.compressobj(9)
    good = compressor.compress(raw[: good_rows * (w * 3 + 1)]) + compressor.flush(zlib.Z_FULL_FLUSH)
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)), (b"IDAT", good + b"\xff" * 64)]
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        chunks.append((b"eXIf", exif.tobytes()))
    return png_from_chunks(chunks + [(b"IEND", b"")])


# --------------------------------------------------------------------------- tall images


def tall(fmt: str, size: tuple[int, int], alpha: bool = False) -> bytes:
    """A `size` image (e.g. 193x31237) in `fmt`: a narrow strip with a gradient down its length."""
    strip = Image.linear_gradient("L").resize((size[0], 256)).resize(size, Image.Resampling.NEAREST)
    im = Image.merge("RGB", (strip, strip.transpose(Image.Transpose.FLIP_TOP_BOTTOM), strip))
    if alpha:
        im.putalpha(strip)
    return encoded(im, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))


# --------------------------------------------------------------------------- TIFF

# The modes Pillow reads TIFFs in that its writer makes (directly, or with signed samples for I).
TIFF_MODES = ("1", "L", "LA", "P", "PA", "I", "I;16", "I;16B", "F", "RGB", "RGBA", "CMYK", "YCbCr", "LAB")
_SAMPLE_FORMAT = 339


def tiff_in_mode(mode: str, size: tuple[int, int] = (64, 48)) -> bytes:
    """A TIFF that Pillow reads back in `mode`: colour modes red | blue, grey modes light | dark grey.

    The picture's expected look, as sRGB, is `tiff_expected(mode)`.
    """
    colour = halves(size, RED, BLUE)
    grey = halves(size, (LIGHT,) * 3, (DARK,) * 3).convert("L")
    if mode in ("RGB", "CMYK", "YCbCr"):
        return encoded(colour.convert(mode), "TIFF")
    if mode == "RGBA":
        rgba = colour.convert("RGBA")
        rgba.putalpha(200)
        return encoded(rgba, "TIFF")
    if mode == "LAB":
        to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")
        return encoded(to_lab.apply(colour), "TIFF")
    if mode in ("P", "PA"):
        palette = Image.new("P", size, 1)
        palette.putpalette([*RED, *BLUE])
        palette.paste(0, (0, 0, size[0] // 2, size[1]))
        return encoded(palette.convert("PA") if mode == "PA" else palette, "TIFF")
    if mode in ("I;16", "I;16B"):
        return encoded(grey.convert("I").point(lambda v: v * 257).convert(mode), "TIFF")
    if mode == "I":  # signed 16-bit samples: Pillow reads them as 32-bit integers
        wide = grey.convert("I").point(lambda v: v * 257).convert("I;16")
        return encoded(wide, "TIFF", tiffinfo={_SAMPLE_FORMAT: 2})
    if mode == "F":
        return encoded(grey.convert("F").point(lambda v: v / 255), "TIFF")
    if mode == "1":
        return encoded(grey.point(lambda v: 255 if v > 127 else 0).convert("1"), "TIFF")
    return encoded(grey.convert(mode), "TIFF")  # L, LA


def tiff_expected(mode: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The sRGB colours of the left and right half of `tiff_in_mode(mode)` as it should render."""
    if mode in ("RGB", "RGBA", "CMYK", "YCbCr", "LAB", "P", "PA"):
        return RED, BLUE
    if mode == "1":
        return WHITE, (0, 0, 0)
    if mode == "I":  # signed: the light half's samples (over 32767) read as negative; the range is stretched
        return (0, 0, 0), WHITE
    return (LIGHT,) * 3, (DARK,) * 3


def multipage_tiff(pages: list[tuple[tuple[int, int], tuple[int, int, int]]]) -> bytes:
    """A TIFF whose pages have the given (size, colour), deflate-compressed (Pillow calls them frames)."""
    ims = [Image.new("RGB", size, colour) for size, colour in pages]
    return encoded(ims[0], "TIFF", save_all=True, append_images=ims[1:], compression="tiff_adobe_deflate")


# --------------------------------------------------------------------------- GIF


def _gif_blocks(data: bytes) -> tuple[bytes, bytes, list[tuple[int, int]]]:
    """(header with logical screen descriptor, global colour table, [(start, end) of each image block])."""
    flags = data[10]
    table_end = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    pos, images = table_end, []
    while data[pos] != 0x3B:
        start = pos
        if data[pos] == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:  # image descriptor, (local table), LZW minimum code size, then sub-blocks
            local = data[pos + 9]
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0) + 1
        while data[pos]:
            pos += 1 + data[pos]
        pos += 1
        if data[start] == 0x2C:
            images.append((start, pos))
    return data[:13], data[13:table_end], images


def gif_with_frames(
    screen: tuple[int, int], frames: list[tuple[tuple[int, int, int, int], tuple[int, int, int]]], duration_cs: int = 10
) -> bytes:
    """A GIF with logical screen `screen` and one frame per ((left, top, width, height), colour).

    Frames may lie partly or wholly outside the screen, which Pillow's writer never produces:
    each frame is encoded alone by Pillow (same palette), then placed by rewriting its
    image descriptor.
    """
    palette = [c for _, colour in frames for c in colour] + [0] * (768 - 3 * len(frames))
    header = table = b""
    body = bytearray()
    for index, ((left, top, width, height), _) in enumerate(frames):
        frame = Image.new("P", (width, height), index)
        frame.putpalette(palette)
        single = encoded(frame, "GIF", optimize=False)
        header, table, images = _gif_blocks(single)
        block = bytearray(single[images[0][0] : images[0][1]])
        block[1:5] = struct.pack("<HH", left, top)
        body += b"\x21\xf9\x04\x04" + struct.pack("<H", duration_cs) + b"\x00\x00" + block  # disposal 1: keep
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    lsd = bytearray(header)
    lsd[6:10] = struct.pack("<HH", *screen)
    return bytes(lsd) + table + (loop if len(frames) > 1 else b"") + bytes(body) + b"\x3b"


# --------------------------------------------------------------------------- seeds for the fuzz stage


def seeds() -> dict[str, bytes]:
    """Small valid files of every accepted format and its common kinds, each with a real data stream."""
    photo = picture()
    alpha = photo.convert("RGBA")
    alpha.putalpha(Image.radial_gradient("L").resize(photo.size))
    frames = [photo, photo.rotate(90).resize(photo.size), ImageChops.invert(photo)]
    return {
        "baseline.jpg": encoded(photo, "JPEG", quality=85),
        "progressive.jpg": encoded(photo, "JPEG", quality=85, progressive=True),
        "rgb.png": encoded(photo, "PNG"),
        "palette.png": encoded(photo.quantize(32), "PNG"),
        "rgba.png": encoded(alpha, "PNG"),
        "gray16.png": encoded(photo.convert("L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"),
        "lossy.webp": encoded(photo, "WEBP", quality=80),
        "lossless_alpha.webp": encoded(alpha, "WEBP", lossless=True),
        "animated.webp": encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100),
        "still.gif": encoded(photo.quantize(64), "GIF"),
        "animated.gif": encoded(
            frames[0].quantize(64),
            "GIF",
            save_all=True,
            append_images=[f.quantize(64) for f in frames[1:]],
            duration=100,
            loop=0,
        ),
        "photo.avif": encoded(photo, "AVIF", quality=70, speed=10),
        "photo.heic": encoded(photo, "HEIF", quality=70),
        "24bit.bmp": encoded(photo, "BMP"),
        "lzw.tif": encoded(photo, "TIFF", compression="tiff_lzw"),
        "deflate_rgba.tif": encoded(alpha, "TIFF", compression="tiff_adobe_deflate"),
    }


def data_stream(data: bytes) -> tuple[int, int]:
    """The byte range of the compressed pixel data in `data` (a file of an accepted format)."""
    if data.startswith(b"\xff\xd8"):  # JPEG: after the first scan header, up to the end marker
        sos = data.index(b"\xff\xda")
        return sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0], data.rindex(b"\xff\xd9")
    if data.startswith(PNG_SIGNATURE):  # the first IDAT's payload
        idat = data.index(b"IDAT")
        return idat + 4, idat + 4 + struct.unpack(">I", data[idat - 4 : idat])[0]
    if data.startswith(b"GIF"):  # from the first image descriptor to the trailer
        return _gif_blocks(data)[2][0][0], len(data) - 1
    if data.startswith(b"RIFF"):  # WebP: the first bitstream chunk's payload
        at = min(i for i in (data.find(b"VP8 "), data.find(b"VP8L")) if i >= 0)
        return at + 8, at + 8 + struct.unpack("<I", data[at + 4 : at + 8])[0]
    if data.startswith(b"BM"):  # BMP: from the pixel array's offset to the end
        return struct.unpack("<I", data[10:14])[0], len(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):  # TIFF: the first strip
        with TiffImagePlugin.TiffImageFile(io.BytesIO(data)) as im:
            offset, count = im.tag_v2[273], im.tag_v2[279]  # StripOffsets, StripByteCounts
        return offset[0], offset[0] + count[0]
    mdat = data.index(b"mdat")  # AVIF, HEIC: the media data box
    return mdat + 4, mdat - 4 + struct.unpack(">I", data[mdat - 4 : mdat])[0]


def with_crcs(data: bytes) -> bytes:
    """A PNG's chunks with their CRCs recomputed, so a change inside IDAT reaches the decoder as is."""
    return png_from_chunks(png_chunks(data)) if data.startswith(PNG_SIGNATURE) else data
