"""The focal point g=auto crops at (proxy.imaging.focus): faces in real portraits, the salient object
in real photos without faces, repeatable for the same bytes, and robust on images with nothing in them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from proxy.config import FocusSettings
from proxy.imaging.errors import ImageRejected
from proxy.imaging.focus import Focus, detection_scale, find_focus
from proxy.imaging.geometry import plan
from support.images import encoded
from support.photos import Scene, contains, photo, scenes

SETTINGS = FocusSettings()


def jpeg(im: Image.Image) -> bytes:
    return encoded(im, "JPEG", quality=92)


@pytest.fixture(scope="module")
def all_scenes() -> list[Scene]:
    return scenes()


def square_crop(scene: Scene, focus: tuple[float, float] | None) -> tuple[float, float, float, float]:
    w, h = scene.image.size
    side = min(w, h)
    g = plan(w, h, side, side, "cover", focus=focus)
    return g.crop or (0, 0, w, h)


def test_each_scene_is_found_by_the_expected_means_and_its_square_crop_keeps_the_subject(
    all_scenes: list[Scene],
) -> None:
    for scene in all_scenes:
        focus = find_focus(jpeg(scene.image), SETTINGS)
        assert focus.by == scene.by, scene.name
        assert contains(square_crop(scene, (focus.x, focus.y)), scene.keep), (scene.name, focus)


def test_the_off_centre_scenes_are_what_a_centre_crop_loses(all_scenes: list[Scene]) -> None:
    """So the test above proves something: without the focal point these crops miss the subject."""
    for scene in all_scenes[1:]:
        assert not contains(square_crop(scene, None), scene.keep), scene.name


def test_the_face_box_is_where_the_face_is(all_scenes: list[Scene]) -> None:
    portrait = all_scenes[0]
    focus = find_focus(jpeg(portrait.image), SETTINGS)
    assert focus.faces == 1 and focus.box is not None
    w, h = portrait.image.size
    x, y, bw, bh = focus.box
    found = (x * w, y * h, (x + bw) * w, (y + bh) * h)
    known = portrait.keep
    overlap_w = min(found[2], known[2]) - max(found[0], known[0])
    overlap_h = min(found[3], known[3]) - max(found[1], known[1])
    known_area = (known[2] - known[0]) * (known[3] - known[1])
    assert overlap_w > 0 and overlap_h > 0 and overlap_w * overlap_h > 0.6 * known_area
    assert known[0] <= focus.x * w <= known[2] and known[1] <= focus.y * h <= known[3]


def test_the_same_bytes_give_the_same_point_every_time_and_on_any_thread() -> None:
    data = jpeg(photo("astronaut"))
    cat = jpeg(photo("chelsea"))
    first = find_focus(data, SETTINGS), find_focus(cat, SETTINGS)
    with ThreadPoolExecutor(4) as pool:
        again = list(pool.map(lambda d: find_focus(d, SETTINGS), [data, cat] * 4))
    assert again == list(first) * 4


def test_a_flat_image_has_its_centre_as_focal_point() -> None:
    assert find_focus(encoded(Image.new("RGB", (300, 200), (90, 120, 200)), "PNG"), SETTINGS) == Focus(
        0.5, 0.5, "saliency"
    )


def test_an_object_on_a_transparent_background_is_found() -> None:
    im = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    im.paste(photo("coffee").resize((150, 100)), (420, 150))
    focus = find_focus(encoded(im, "PNG"), SETTINGS)
    assert 420 <= focus.x * 600 <= 570 and 150 <= focus.y * 300 <= 250


def test_greyscale_and_tiny_images_work() -> None:
    grey = photo("astronaut").convert("L")
    assert find_focus(encoded(grey, "PNG"), SETTINGS).by == "faces"
    assert find_focus(encoded(Image.new("L", (1, 1), 7), "PNG"), SETTINGS) == Focus(0.5, 0.5, "saliency")


def test_values_are_fractions_rounded_to_four_decimals(all_scenes: list[Scene]) -> None:
    for scene in all_scenes:
        focus = find_focus(jpeg(scene.image), SETTINGS)
        for value in (focus.x, focus.y, *(focus.box or ())):
            assert 0 <= value <= 1 and round(value, 4) == value


def test_the_metadata_form_round_trips() -> None:
    focus = find_focus(jpeg(photo("astronaut")), SETTINGS)
    assert Focus.from_dict(focus.to_dict()) == focus
    assert Focus.from_dict(Focus(0.25, 0.75, "saliency").to_dict()) == Focus(0.25, 0.75, "saliency")


def test_the_detection_copy_has_about_the_configured_area_whatever_the_aspect() -> None:
    for size in [(4000, 3000), (9000, 1000), (1000, 9000)]:
        scale = detection_scale(size, 384**2)
        assert abs(size[0] * scale * size[1] * scale - 384**2) < 1
    assert detection_scale((200, 100), 384**2) == 1.0  # never enlarged


def test_bytes_that_are_no_image_are_rejected_not_a_crash() -> None:
    with pytest.raises(ImageRejected):
        find_focus(b"definitely not an image", SETTINGS)
