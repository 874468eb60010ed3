"""`{% image_url id w=400 %}`, `{% srcset id fmt="webp" %}` and `{% picture id sizes=... %}`.

The ImageUrls comes from settings.RESIZE_PROXY ({"URL": ..., "SIGNING_KEY": ..., optional "WIDTHS" and
"FORMATS"}), read at every tag (building it does no I/O), so overridden settings apply at once.
Django escapes the URLs like any value; `picture` is marked safe (markup.picture_html escapes
everything it puts in it).
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from django.utils.safestring import SafeString, mark_safe

from ...urls import FORMATS, WIDTHS, ImageUrls

register = template.Library()


def urls() -> ImageUrls:
    conf = settings.RESIZE_PROXY
    return ImageUrls(
        conf["URL"], conf.get("SIGNING_KEY"), tuple(conf.get("WIDTHS", WIDTHS)), tuple(conf.get("FORMATS", FORMATS))
    )


@register.simple_tag
def image_url(image_id: str, **params: Any) -> str:
    return urls().url(image_id, **params)


@register.simple_tag(name="srcset")
def image_srcset(image_id: str, **options: Any) -> str:
    return urls().srcset(image_id, **options)


@register.simple_tag
def picture(image_id: str, sizes: str, **options: Any) -> SafeString:
    return mark_safe(urls().picture(image_id, sizes, **options))
