"""proxy.imaging.sanitize on the generated wild files: complete decodes, every mode, pages, GIF canvases, memory.

Each class of file here once went wrong on real uploads: PNGs stored with rows missing,
TIFFs refused for their mode or their pages, GIFs stored larger than browsers show them,
animations whose memory was judged by one frame.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PIL import Image, ImageSequence

from proxy.config import EncoderSettings, LimitSettings, SanitizeSettings
from proxy.imaging import sanitize as sanitize_module
from proxy.imaging.decode import decoded, orientation
from proxy.imaging.errors import InvalidImage
from proxy.imaging.geometry import plan
from proxy.imaging.render import RenderJob, render
from proxy.imaging.sanitize import Sanitized, sanitize
from support.wild import (
    BLUE,
    GREEN,
    RED,
    TIFF_MODES,
    encoded,
    gif_with_frames,
    multipage_tiff,
    picture,
    png_with_corrupt_idat,
    tiff_expected,
    tiff_in_mode,
)

POLICY, LIMITS = SanitizeSettings(), LimitSettings()


def clean(data: bytes) -> Sanitized:
    return sanitize(data, POLICY, LIMITS)


def frames_of(data: bytes) -> list[Image.Image]:
    """Every frame of `data`, decoded from fresh bytes, as RGBA."""
    return [frame.convert("RGBA") for frame in ImageSequence.Iterator(Image.open(io.BytesIO(data)))]


# --------------------------------------------------------------------------- complete decodes


@pytest.mark.parametrize("exif", [None, 1, 6], ids=["no-exif", "exif-upright", "exif-rotated"])
def test_a_png_whose_stream_breaks_after_valid_rows_is_refused(exif: int | None) -> None:
    """Whatever reads the file first: with an eXIf chunk after the pixels, reading the orientation
    makes Pillow decode the image and swallow the error, which once stored the valid rows alone."""
    data = png_with_corrupt_idat(exif_orientation=exif)
    with pytest.raises(OSError):
        Image.open(io.BytesIO(data)).load()  # Pillow alone refuses it
    with pytest.raises(InvalidImage, match="corrupt or truncated"):
        clean(data)


def test_decoded_is_independent_of_what_read_the_bytes_before() -> None:
    """The mechanism: a getexif() that decodes and swallows the error leaves an image Pillow calls loaded;
    decoded() opens the bytes again, so the error still comes out."""
    data = png_with_corrupt_idat(exif_orientation=1)
    touched = Image.open(io.BytesIO(data))
    assert orientation(touched) == 1
    touched.load()  # no error any more: Pillow marked it loaded, with the rows it had
    with pytest.raises(InvalidImage):
        decoded(data, POLICY.formats, LIMITS.max_pixels, LIMITS.max_frames)


def test_a_valid_png_with_exif_after_the_pixels_is_stored_whole_and_upright() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    source = picture((60, 40))
    out = clean(encoded(source, "PNG", exif=exif))
    assert (out.width, out.height) == (40, 60)
    assert frames_of(out.data)[0].tobytes() == source.convert("RGBA").transpose(Image.Transpose.ROTATE_270).tobytes()


# --------------------------------------------------------------------------- modes


@pytest.mark.parametrize("mode", TIFF_MODES)
def test_a_tiff_in_every_mode_is_stored_and_renders_its_colours(mode: str) -> None:
    data = tiff_in_mode(mode)
    assert Image.open(io.BytesIO(data)).mode == mode
    out = clean(data)
    assert out.format == "png" and (out.width, out.height) == (64, 48)
    variant = Image.open(
        io.BytesIO(
            render(
                out.data, RenderJob(plan(64, 48, None, None, "inside"), "png", 100, (255, 255, 255), EncoderSettings())
            )
        )
    )
    rgb = variant.convert("RGB")
    left, right = tiff_expected(mode)
    assert rgb.getpixel((8, 24)) == pytest.approx(left, abs=10), mode
    assert rgb.getpixel((56, 24)) == pytest.approx(right, abs=10), mode


def test_sixteen_bit_tiffs_keep_sixteen_bits() -> None:
    for mode in ("I;16", "I;16B", "I", "F"):
        stored = Image.open(io.BytesIO(clean(tiff_in_mode(mode)).data))
        assert stored.mode == "I;16", mode


# --------------------------------------------------------------------------- pages and frames


def test_a_multi_page_tiff_with_pages_of_different_sizes_stores_its_first_page() -> None:
    out = clean(multipage_tiff([((64, 48), RED), ((200, 100), GREEN), ((32, 32), BLUE)]))
    assert (out.format, out.width, out.height, out.frames) == ("png", 64, 48, 1)
    stored = Image.open(io.BytesIO(out.data))
    assert getattr(stored, "n_frames", 1) == 1 and stored.convert("RGB").getpixel((10, 10)) == RED


def test_gif_frames_past_the_logical_screen_are_clipped_to_it() -> None:
    """Screen 100x100, first frame on it, second frame at (50, 50) reaching 150x150: stored 100x100, as
    browsers draw it (Pillow alone grows the picture to 150x150)."""
    data = gif_with_frames((100, 100), [((0, 0, 100, 100), RED), ((50, 50, 100, 100), BLUE)])
    out = clean(data)
    assert (out.format, out.width, out.height, out.frames) == ("gif", 100, 100, 2)
    first, second = frames_of(out.data)
    assert first.size == second.size == (100, 100)
    assert first.getpixel((99, 99))[:3] == RED and second.getpixel((99, 99))[:3] == BLUE
    assert second.getpixel((10, 10))[:3] == RED  # disposal 1: the first frame stays under the second


def test_a_gif_frame_wholly_off_the_screen_shows_nothing() -> None:
    """Clipped away, the frame equals the one before it; GIF's writer merges the two, and the
    frame count says what is stored."""
    data = gif_with_frames((100, 100), [((0, 0, 100, 100), RED), ((150, 150, 30, 30), BLUE), ((0, 0, 50, 50), GREEN)])
    out = clean(data)
    stored = frames_of(out.data)
    assert (out.width, out.height, out.frames, len(stored)) == (100, 100, 2, 2)
    assert stored[0].getpixel((99, 99))[:3] == RED and stored[1].getpixel((10, 10))[:3] == GREEN


def test_a_first_gif_frame_larger_than_the_screen_widens_the_canvas() -> None:
    """As Chromium (and Firefox, for a first frame at the origin) draws it: the screen grows to hold frame one."""
    out = clean(gif_with_frames((100, 100), [((0, 0, 150, 120), RED)]))
    assert (out.width, out.height, out.frames) == (150, 120, 1)
    assert frames_of(out.data)[0].getpixel((149, 119))[:3] == RED


def test_a_gif_inside_its_screen_keeps_the_lossless_path() -> None:
    data = gif_with_frames((100, 100), [((0, 0, 100, 100), RED), ((20, 20, 40, 40), BLUE)])
    out = clean(data)
    assert [f.tobytes() for f in frames_of(out.data)] == [f.tobytes() for f in frames_of(data)]
    assert out.data[6:10] == data[6:10]  # the logical screen as uploaded: the container was only stripped


def test_the_memory_gate_judges_every_frame_an_upload_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """An animation re-encoded at upload holds every frame decoded at once: the gate sees them all.
    A multi-page TIFF holds one page."""
    calls: list[int] = []
    real = sanitize_module.memory_gate

    @contextmanager
    def recorded(pixels: int) -> Iterator[None]:
        calls.append(pixels)
        with real(pixels):
            yield

    monkeypatch.setattr(sanitize_module, "memory_gate", recorded)
    frames = [picture((80, 60)).rotate(angle) for angle in (0, 90, 180)]
    clean(encoded(frames[0], "PNG", save_all=True, append_images=frames[1:]))
    clean(multipage_tiff([((80, 60), RED)] * 3))
    assert calls == [80 * 60 * 3, 80 * 60]
