"""Lossless metadata removal at the container level.

When an upload needs no pixel change (orientation already upright), re-encoding
would only add generation loss. These functions instead copy the file segment
by segment and keep an allow-list of the segments that carry pixels, palettes,
animation control or colour (ICC) data; everything else (EXIF, XMP, IPTC,
comments, text chunks, MPO preview frames, bytes after the end marker) is dropped.
An allow-list, not a deny-list, so unknown metadata kinds go too.

Each function raises `MalformedContainer` when the structure does not parse;
the caller turns that into a 422.
"""

from __future__ import annotations

import struct


class MalformedContainer(ValueError):
    """The file's segment structure is broken (truncated length, missing marker)."""


# --------------------------------------------------------------------------- JPEG

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
# Kept marker segments: quantisation/huffman/arith tables, frame headers (SOF0-15
# minus DHT/JPG/DAC codes handled below), restart interval, JFIF APP0, Adobe APP14.
_JPEG_KEEP = {0xC4, 0xCC, 0xDB, 0xDD, 0xDC, *(m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC))}


def _jpeg_keep_app(marker: int, payload: bytes) -> bool:
    if marker == 0xE0:
        return payload.startswith((b"JFIF\x00", b"JFXX\x00"))
    if marker == 0xE2:
        return payload.startswith(b"ICC_PROFILE\x00")
    if marker == 0xEE:
        return payload.startswith(b"Adobe")  # colour transform flag: needed for CMYK/YCCK
    return False


def strip_jpeg(data: bytes) -> bytes:
    """Keep the primary JPEG image's coding segments, ICC, JFIF and Adobe; drop the rest."""
    if data[:2] != b"\xff\xd8":
        raise MalformedContainer("missing JPEG SOI marker")
    out = bytearray(b"\xff\xd8")
    pos, end = 2, len(data)
    while True:
        # Markers may be preceded by any number of 0xFF fill bytes.
        if pos >= end or data[pos] != 0xFF:
            raise MalformedContainer("expected a JPEG marker")
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            raise MalformedContainer("truncated JPEG marker")
        marker = data[pos]
        pos += 1
        if marker == _EOI:
            out += b"\xff\xd9"
            return bytes(out)  # anything after the first EOI (MPO frames, trailers) is dropped
        if marker in _STANDALONE:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > end:
            raise MalformedContainer("truncated JPEG segment length")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2 or pos + length > end:
            raise MalformedContainer("JPEG segment runs past the end of the file")
        segment = data[pos - 2 : pos + length]
        payload = data[pos + 2 : pos + length]
        pos += length
        if marker == _SOS:
            out += segment
            scan_end = _entropy_end(data, pos)
            out += data[pos:scan_end]
            pos = scan_end
        elif marker in _JPEG_KEEP or (0xE0 <= marker <= 0xEF and _jpeg_keep_app(marker, payload)):
            out += segment


def _entropy_end(data: bytes, pos: int) -> int:
    """Index of the marker that ends an entropy-coded scan (skipping stuffed 0xFF00 and RSTn)."""
    end = len(data)
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= end:
            raise MalformedContainer("JPEG scan data has no end marker (truncated)")
        nxt = data[pos + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            pos += 1 if nxt == 0xFF else 2
            continue
        return pos


# --------------------------------------------------------------------------- PNG

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP = {
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


def strip_png(data: bytes) -> bytes:
    """Keep pixel, palette, colour and APNG chunks; drop text, eXIf, time and unknown chunks."""
    if not data.startswith(_PNG_SIG):
        raise MalformedContainer("missing PNG signature")
    out = bytearray(_PNG_SIG)
    pos, end = len(_PNG_SIG), len(data)
    while True:
        if pos + 8 > end:
            raise MalformedContainer("truncated PNG chunk header")
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        chunk_end = pos + 12 + length
        if chunk_end > end:
            raise MalformedContainer("PNG chunk runs past the end of the file")
        if ctype in _PNG_KEEP:
            out += data[pos:chunk_end]
        pos = chunk_end
        if ctype == b"IEND":
            return bytes(out)


# --------------------------------------------------------------------------- WebP

_WEBP_KEEP = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF", b"ICCP"}
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def strip_webp(data: bytes) -> bytes:
    """Keep bitstream, alpha, animation and ICC chunks; drop EXIF and XMP and fix VP8X flags."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise MalformedContainer("missing RIFF/WEBP header")
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = min(len(data), 8 + riff_size)
    body = bytearray()
    pos = 12
    while pos < end:
        if pos + 8 > end:
            raise MalformedContainer("truncated WebP chunk header")
        fourcc, size = struct.unpack("<4sI", data[pos : pos + 8])
        chunk_end = pos + 8 + size + (size & 1)
        if pos + 8 + size > end:
            raise MalformedContainer("WebP chunk runs past the end of the file")
        if fourcc in _WEBP_KEEP:
            chunk = bytearray(data[pos : min(chunk_end, end)])
            if fourcc == b"VP8X" and size >= 1:
                chunk[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
            if len(chunk) & 1:
                chunk += b"\x00"
            body += chunk
        pos = chunk_end
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)


# --------------------------------------------------------------------------- GIF

_GIF_KEEP_APPS = (b"NETSCAPE2.0", b"ANIMEXTS1.0")


def _gif_sub_blocks_end(data: bytes, pos: int) -> int:
    end = len(data)
    while True:
        if pos >= end:
            raise MalformedContainer("truncated GIF data sub-blocks")
        size = data[pos]
        pos += 1 + size
        if size == 0:
            return pos


def strip_gif(data: bytes) -> bytes:
    """Keep image descriptors, colour tables, graphic control and looping; drop comments and XMP."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise MalformedContainer("missing GIF header")
    flags = data[10]
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    if pos > len(data):
        raise MalformedContainer("truncated GIF colour table")
    out = bytearray(data[:pos])
    end = len(data)
    while True:
        if pos >= end:
            raise MalformedContainer("GIF has no trailer (truncated)")
        block = data[pos]
        if block == 0x3B:
            out += b"\x3b"
            return bytes(out)
        if block == 0x2C:  # image descriptor (+ local colour table) + LZW data
            if pos + 10 > end:
                raise MalformedContainer("truncated GIF image descriptor")
            local = data[pos + 9]
            start = pos
            pos += 10 + (3 * (2 << (local & 7)) if local & 0x80 else 0)
            pos = _gif_sub_blocks_end(data, pos + 1)  # +1: LZW minimum code size
            out += data[start:pos]
        elif block == 0x21:
            if pos + 2 > end:
                raise MalformedContainer("truncated GIF extension")
            label = data[pos + 1]
            start = pos
            pos = _gif_sub_blocks_end(data, pos + 2)
            keep = label == 0xF9 or (label == 0xFF and data[start + 3 : start + 14] in _GIF_KEEP_APPS)
            if keep:
                out += data[start:pos]
        else:
            raise MalformedContainer(f"unexpected GIF block 0x{block:02x}")


STRIPPERS = {"jpeg": strip_jpeg, "png": strip_png, "webp": strip_webp, "gif": strip_gif}
