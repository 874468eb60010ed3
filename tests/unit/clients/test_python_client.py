"""clients/python's pure parts: URLs, srcset and <picture> built locally, the server's signing, and the
packaging promise (httpx only: no Pillow, boto3 or starlette, not even the server's package)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from proxy.signing import verify
from resize_proxy_client import ImageUrls
from support.corpus import REPO

CLIENT = REPO / "clients" / "python"
IMAGE = "0123456789abcdef0123456789abcdef"
KEY = "a-signing-key-of-at-least-32-characters"


def test_url_keeps_the_parameters_and_signs_with_the_servers_code() -> None:
    urls = ImageUrls("https://img.example.com/", signing_key=KEY)
    url = urls.url(IMAGE, w=400, fmt="webp")
    assert url.startswith(f"https://img.example.com/img/{IMAGE}?w=400&fmt=webp&s=")
    signature = url.rsplit("&s=", 1)[1]
    assert verify((KEY,), IMAGE, [("fmt", "webp"), ("w", "400")], signature)  # order and spelling fold
    assert verify((KEY,), IMAGE, [("width", "400"), ("format", "webp")], signature)
    assert not verify((KEY,), IMAGE, [("w", "800"), ("fmt", "webp")], signature)
    assert ImageUrls("https://img.example.com").url(IMAGE) == f"https://img.example.com/img/{IMAGE}"


def test_srcset_stops_at_the_originals_width_with_its_true_descriptor() -> None:
    urls = ImageUrls("https://i.test", widths=(320, 640, 1280))
    base = f"https://i.test/img/{IMAGE}"
    assert (
        urls.srcset(IMAGE, "webp", width=800) == f"{base}?w=320&fmt=webp 320w, {base}?w=640&fmt=webp 640w, "
        f"{base}?w=1280&fmt=webp 800w"
    )
    assert urls.srcset(IMAGE) == f"{base}?w=320 320w, {base}?w=640 640w, {base}?w=1280 1280w"


def test_picture_is_the_expected_html() -> None:
    urls = ImageUrls("https://i.test", widths=(320, 640), formats=("webp", "jpeg"))
    base = f"https://i.test/img/{IMAGE}"
    html = urls.picture(IMAGE, sizes="(max-width: 600px) 100vw, 50vw", width=1800, height=1200, alt='Ada "A."')
    assert html == (
        "<picture>\n"
        f'  <source type="image/webp" srcset="{base}?w=320&amp;fmt=webp 320w, {base}?w=640&amp;fmt=webp 640w" '
        'sizes="(max-width: 600px) 100vw, 50vw">\n'
        f'  <img src="{base}?w=640&amp;fmt=jpeg" srcset="{base}?w=320&amp;fmt=jpeg 320w, '
        f'{base}?w=640&amp;fmt=jpeg 640w" sizes="(max-width: 600px) 100vw, 50vw" width="1800" height="1200" '
        'alt="Ada &quot;A.&quot;" loading="lazy" decoding="async">\n'
        "</picture>"
    )


def test_the_client_imports_with_httpx_alone(tmp_path: Path) -> None:
    """In a fresh interpreter where Pillow, boto3, starlette and the server's proxy package cannot be
    imported, the client and its signing still work."""
    code = (
        "import sys\n"
        "for name in ('PIL', 'boto3', 'botocore', 'starlette', 'uvicorn', 'proxy'): sys.modules[name] = None\n"
        f"sys.path.insert(0, {str(CLIENT)!r})\n"
        "from resize_proxy_client import AsyncClient, Client, ImageUrls\n"
        f"print(ImageUrls('https://i.test', signing_key={KEY!r}).url({IMAGE!r}, w=400))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "&s=" in done.stdout


def test_the_wheel_requires_httpx_only_and_carries_the_shared_modules_as_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(CLIENT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = tmp_path.glob("resize_proxy_client-*.whl")
    with zipfile.ZipFile(wheel) as z:
        metadata = next(z.read(n).decode() for n in z.namelist() if n.endswith("METADATA"))
        for shared in ("params", "signing", "markup"):  # the server's own files, not links
            assert z.read(f"resize_proxy_client/{shared}.py") == (REPO / "proxy" / f"{shared}.py").read_bytes()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == ["Requires-Dist: httpx>=0.27"]
