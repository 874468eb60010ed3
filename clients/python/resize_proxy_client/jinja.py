"""Jinja2 extension: `image_url`, `srcset` and `picture` as template globals.

    env = Environment(extensions=[ResizeProxyExtension], autoescape=True)
    env.resize_proxy = ImageUrls("https://img.example.com")

    <img src="{{ image_url(user.avatar, w=160) }}" alt="">
    {{ picture(post.image, sizes="(max-width: 600px) 100vw, 600px", width=post.width, height=post.height) }}

`picture` returns markup (safe under autoescape); URLs are plain strings that Jinja escapes in attributes.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, pass_environment
from jinja2.ext import Extension
from markupsafe import Markup

from .urls import ImageUrls


def _urls(env: Environment) -> ImageUrls:
    urls: ImageUrls | None = getattr(env, "resize_proxy", None)
    if urls is None:
        raise RuntimeError("set environment.resize_proxy = ImageUrls(<the service's public URL>) first")
    return urls


@pass_environment
def image_url(env: Environment, image_id: str, **params: Any) -> str:
    return _urls(env).url(image_id, **params)


@pass_environment
def image_srcset(env: Environment, image_id: str, **options: Any) -> str:
    return _urls(env).srcset(image_id, **options)


@pass_environment
def picture(env: Environment, image_id: str, sizes: str, **options: Any) -> Markup:
    return Markup(_urls(env).picture(image_id, sizes, **options))


class ResizeProxyExtension(Extension):
    """Adds the globals; the URLs come from `environment.resize_proxy`, an ImageUrls set by the app."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.extend(resize_proxy=None)
        environment.globals.update(image_url=image_url, srcset=image_srcset, picture=picture)
