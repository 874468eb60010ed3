"""clients/python against `python -m proxy serve`: upload and delete with the token (sync and async),
signed URLs the server verifies, `<picture>` markup equal to the service's own, the Jinja2 extension
and the Django tags with the real Jinja2 and Django, and examples/fastapi_avatars.py end to end (a
user uploads an avatar, the profile page's `<picture>` URLs all load)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from resize_proxy_client import AsyncClient, Client, ImageUrls, ServiceError
from support.corpus import REPO
from support.processes import free_port, stop_process
from support.servers import Server, ServerFactory
from support.tokens import APP_AUTH, APP_TOKEN

PHOTO = "photos/orientation_1.jpg"  # 1800x1200
KEY = "python-client-signing-key-of-32-chars-or-more"
EXAMPLE = REPO / "examples" / "fastapi_avatars.py"


@pytest.fixture(scope="module")
def photo(token_server: Server, corpus: Path) -> dict[str, Any]:
    with Client(token_server.url, APP_TOKEN) as images:
        return images.upload((corpus / PHOTO).read_bytes())


def picture_urls(html: str) -> list[str]:
    """Every URL a <picture> names: each srcset candidate and the <img src>."""
    found = [unescape(src) for src in re.findall(r'\bsrc="([^"]+)"', html)]
    for srcset in re.findall(r'\bsrcset="([^"]+)"', html):
        found += [unescape(candidate.split()[0]) for candidate in srcset.split(", ")]
    return found


def assert_all_load(urls: list[str]) -> list[int]:
    """Each URL answers an image; its widths, as decoded."""
    assert urls
    widths = []
    with httpx.Client(timeout=60) as c:
        for url in urls:
            r = c.get(url, headers={"accept": "image/avif,image/webp,*/*"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("image/"), (url, r.text)
            widths.append(Image.open(io.BytesIO(r.content)).width)
    return widths


def test_upload_and_delete_with_the_token(token_server: Server, corpus: Path) -> None:
    with Client(token_server.url, APP_TOKEN) as images:
        uploaded = images.upload((corpus / "photos/orientation_3.jpg").read_bytes())
        assert (uploaded["width"], uploaded["height"]) == (1800, 1200)
        assert images.meta(uploaded["id"])["id"] == uploaded["id"]
        images.delete(uploaded["id"])
        with pytest.raises(ServiceError) as gone:
            images.meta(uploaded["id"])
        assert gone.value.status == 404 and gone.value.error == "not_found"
        with pytest.raises(ServiceError) as refused:
            images.upload(b"not an image at all")
        assert (refused.value.status, refused.value.error) == (415, "unsupported_format")
    with Client(token_server.url, "a-wrong-token-0123456789") as stranger, pytest.raises(ServiceError) as denied:
        stranger.upload((corpus / PHOTO).read_bytes())
    assert denied.value.status == 401


def test_the_async_client_does_the_same(token_server: Server, corpus: Path) -> None:
    async def flow() -> tuple[dict[str, Any], int]:
        async with AsyncClient(token_server.url, APP_TOKEN) as images:
            uploaded = await images.upload((corpus / "photos/orientation_6.jpg").read_bytes())
            await images.delete(uploaded["id"])
            try:
                await images.meta(uploaded["id"])
            except ServiceError as exc:
                return uploaded, exc.status
        raise AssertionError("meta of a deleted image answered")

    uploaded, status = asyncio.run(flow())
    assert uploaded["format"] == "jpeg" and status == 404


def test_the_clients_picture_is_the_services_own(photo: dict[str, Any], token_server: Server) -> None:
    """Built locally from the id and the size in the upload answer, with the service's default lists."""
    w, h = photo["width"], photo["height"]
    ours = ImageUrls(token_server.url).picture(photo["id"], f"(max-width: {w}px) 100vw, {w}px", w, h)
    assert ours == photo["picture"]
    assert max(assert_all_load(picture_urls(ours))) == w


def test_signed_urls_from_the_client_verify_on_the_server(make_server: ServerFactory, corpus: Path) -> None:
    srv = make_server(auth=APP_AUTH, security={"signing_keys": [KEY]})
    with Client(srv.url, APP_TOKEN, signing_key=KEY) as images:
        image = images.upload((corpus / PHOTO).read_bytes())["id"]
        url = images.urls.url(image, w=400, fmt="webp")
        with httpx.Client(timeout=60) as c:
            assert c.get(url).headers["x-image-width"] == "400"
            assert c.get(url.replace("w=400", "w=800")).status_code == 403  # tampered
            assert c.get(images.urls.url(image, w=1000)).headers["x-image-width"] == "1000"  # signed: exact
            assert c.get(ImageUrls(srv.url, "another-key-that-is-32-chars-long!!").url(image, w=400)).status_code == 403
        html = images.urls.picture(image, sizes="100vw", width=1800, height=1200)
    assert all("&s=" in url for url in picture_urls(html))
    assert_all_load(picture_urls(html))


def test_jinja_extension_renders_urls_and_picture(photo: dict[str, Any], token_server: Server) -> None:
    from jinja2 import Environment

    from resize_proxy_client.jinja import ResizeProxyExtension

    env = Environment(extensions=[ResizeProxyExtension], autoescape=True)
    env.resize_proxy = ImageUrls(token_server.url)  # type: ignore[attr-defined]
    page = env.from_string(
        '<img src="{{ image_url(id, w=400, fmt="webp") }}" alt="">\n'
        '{{ picture(id, sizes="50vw", width=width, height=height, alt="A & B") }}'
    )
    html = page.render(id=photo["id"], width=photo["width"], height=photo["height"])
    urls = ImageUrls(token_server.url)
    assert html == (
        f'<img src="{urls.url(photo["id"], w=400, fmt="webp").replace("&", "&amp;")}" alt="">\n'
        + urls.picture(photo["id"], "50vw", photo["width"], photo["height"], "A & B")
    )
    assert 'alt="A &amp; B"' in html and "&amp;amp;" not in html  # escaped once, not twice
    assert assert_all_load(picture_urls(html))[0] == 400


def test_django_tags_render_urls_and_picture(photo: dict[str, Any], token_server: Server) -> None:
    import django
    from django.conf import settings
    from django.template import Context, Template
    from django.test import override_settings

    if not settings.configured:  # once per session; each backend's service is set below
        settings.configure(
            INSTALLED_APPS=["resize_proxy_client.django"],
            TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        )
        django.setup()
    page = Template(
        '{% load resize_proxy %}<img src="{% image_url id w=400 %}" alt="">\n'
        '{% picture id sizes="(max-width: 600px) 100vw, 600px" width=width height=height %}'
    )
    with override_settings(RESIZE_PROXY={"URL": token_server.url}):
        html = page.render(Context({"id": photo["id"], "width": photo["width"], "height": photo["height"]}))
    urls = ImageUrls(token_server.url)
    assert html == (
        f'<img src="{urls.url(photo["id"], w=400)}" alt="">\n'
        + urls.picture(photo["id"], "(max-width: 600px) 100vw, 600px", photo["width"], photo["height"])
    )
    assert_all_load(picture_urls(html))


def test_fastapi_example_uploads_an_avatar_and_its_picture_loads(
    token_server: Server, corpus: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = os.environ | {
        "RESIZE_PROXY_URL": token_server.url,
        "RESIZE_PROXY_TOKEN": APP_TOKEN,
        "AVATARS_DB": str(tmp_path / "avatars.db"),
        "PYTHONPATH": str(REPO / "clients" / "python"),
    }
    log = (tmp_path / "app.log").open("wb")
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "fastapi_avatars:app",
            "--app-dir",
            str(EXAMPLE.parent),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert app.poll() is None and time.monotonic() < deadline, (tmp_path / "app.log").read_text()
            try:
                httpx.get(base + "/users/nobody", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=60) as c:
            assert c.get("/users/ada").status_code == 404
            sent = c.post("/users/ada/avatar", files={"file": ("me.jpg", (corpus / PHOTO).read_bytes(), "image/jpeg")})
            assert sent.status_code == 303 and sent.headers["location"] == "/users/ada"
            page = c.get("/users/ada")
            refused = c.post("/users/bob/avatar", files={"file": ("x.jpg", b"not an image", "image/jpeg")})
        assert page.status_code == 200 and "<picture>" in page.text and 'alt="ada&#x27;s avatar"' in page.text
        assert refused.status_code == 415  # the service's refusal, passed on to the user
        assert sorted(set(assert_all_load(picture_urls(page.text)))) == [160, 320, 480]
    finally:
        stop_process(app)
        log.close()


def test_readme_shows_the_fastapi_example_as_it_is() -> None:
    """The README's "Use it from your framework" carries the example file verbatim."""
    assert EXAMPLE.read_text(encoding="utf-8") in (REPO / "README.md").read_text(encoding="utf-8")
