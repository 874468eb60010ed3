"""Why an image was refused. The HTTP layer maps each class to a status code."""


class ImageRejected(Exception):
    """Base: the bytes are not an image we will store or render."""

    code = "invalid_image"


class UnsupportedFormat(ImageRejected):
    """Not an image, or a format outside the accepted list (HTTP 415)."""

    code = "unsupported_format"


class InvalidImage(ImageRejected):
    """Looks like an accepted format but is corrupt or truncated (HTTP 422)."""

    code = "invalid_image"


class TooManyPixels(ImageRejected):
    """Width x height (x frames) beyond the configured limit (HTTP 422)."""

    code = "too_many_pixels"


class TooManyFrames(ImageRejected):
    """More animation frames than the configured limit (HTTP 422)."""

    code = "too_many_frames"
