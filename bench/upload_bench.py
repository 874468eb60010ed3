"""Upload time of the largest AVIF and HEIC, before and after the upload-path changes, in one run.

An AVIF upload is always re-encoded (its metadata lives in boxes we do not rewrite), and
that re-encode ran at Pillow's default libavif speed 6: about 13-15 s for a 12 MP phone
photo on a 2-core machine, close to the render time limit. A HEIC upload is decoded and
stored as JPEG. Before, the same bytes uploaded again also repeated all of that work
before finding the existing id.

- **before**: `sanitize.avif_speed = 6` (the old re-encode), and every upload on a fresh
  process (the old path had no memory of uploads, so a repeat sanitized again and then
  found the existing id: exactly what a restarted process does now).
- **after**: the default config; the repeat goes to the same process, whose raw-upload
  index answers it.

Each figure is the median over --rounds of POST /img over loopback to `python -m proxy
serve` (1 worker, local disk, fresh data folder per round), so it includes the working
copies and the writes. Ratio = before / after: above 1, the upload got faster. The AVIF
rows also give the stored original's size and its PSNR against the decoded upload (the
price of the faster re-encode). Inputs: the corpus's largest AVIF and HEIC by pixels, and
a 12 MP AVIF made here from the HEIC photo (3024x4032, the issue's phone size).

Usage: python bench/upload_bench.py [--rounds N]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # support.*: servers, corpus

from PIL import Image  # noqa: E402
from render_bench import psnr  # noqa: E402

from proxy import keys  # noqa: E402
from proxy.imaging import decode  # noqa: E402,F401 - registers the HEIF opener
from support.corpus import CORPUS, corpus_rows  # noqa: E402
from support.servers import Server, new_server  # noqa: E402

BEFORE = {"sanitize": {"avif_speed": 6}}  # Pillow's default speed: what the AVIF re-encode ran at
AFTER: dict[str, dict[str, int]] = {}  # the shipped defaults
PHONE = (3024, 4032)


@dataclass(frozen=True)
class Upload:
    label: str
    data: bytes


@dataclass
class Timings:
    first: list[float]
    repeat: list[float]
    stored: bytes = b""


def largest(suffixes: tuple[str, ...]) -> Path:
    """The corpus file with one of `suffixes` that has the most pixels (as our openers read it)."""

    def pixels(path: Path) -> int:
        with Image.open(path) as im:
            return im.width * im.height

    return max((CORPUS / r["path"] for r in corpus_rows() if r["path"].endswith(suffixes)), key=pixels)


def inputs() -> list[Upload]:
    avif, heic = largest((".avif",)), largest((".heic", ".heif"))
    photo = Image.open(heic).convert("RGB").resize(PHONE, Image.Resampling.LANCZOS)
    phone = io.BytesIO()
    photo.save(phone, "AVIF", quality=75, speed=8)
    return [
        Upload(f"{avif.relative_to(CORPUS)}", avif.read_bytes()),
        Upload(f"{heic.relative_to(CORPUS)}", heic.read_bytes()),
        Upload(f"12 MP AVIF {PHONE[0]}x{PHONE[1]} (made from the HEIC)", phone.getvalue()),
    ]


def timed_upload(server: Server, data: bytes) -> tuple[float, str]:
    with server.client() as client:
        started = time.perf_counter()
        r = client.post("/img", content=data)
        elapsed = time.perf_counter() - started
    r.raise_for_status()
    return elapsed, r.json()["id"]


def one_round(upload: Upload, sections: dict[str, dict[str, int]], restart: bool, into: Timings) -> None:
    """A first upload on a fresh data folder, then the same bytes again (after a restart for `before`)."""
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as folder:
        server = new_server(Path(folder), "local", None, **sections).start()  # type: ignore[arg-type]
        try:
            seconds, image = timed_upload(server, upload.data)
            into.first.append(seconds)
            into.stored = server.stored(keys.original(image))
            if restart:
                server.stop()
                server.start()
            into.repeat.append(timed_upload(server, upload.data)[0])
        finally:
            server.stop()


def quality(upload: Upload, stored: bytes) -> str:
    source = Image.open(io.BytesIO(upload.data))
    if source.format != "AVIF":
        return ""
    return f"{len(stored) / 1024:.0f} KB, {psnr(Image.open(io.BytesIO(stored)), source):.1f} dB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="uploads per cell, median reported (default 3)")
    args = parser.parse_args(argv)
    if not (CORPUS / "MANIFEST.tsv").is_file():
        print(f"corpus not found at {CORPUS} (set RESIZE_PROXY_CORPUS)", file=sys.stderr)
        return 2
    start_load = os.getloadavg()[0]
    uploads = inputs()
    print(
        f"upload_bench: POST /img, 1 worker, local disk, median of {max(1, args.rounds)} rounds; "
        "before = sanitize.avif_speed 6 and no upload index, after = defaults"
    )
    print(f"{'upload':58} {'':6} {'first':>9} {'repeat':>9}  stored original (AVIF: size, PSNR vs upload)")
    for upload in uploads:
        results = {"before": Timings([], []), "after": Timings([], [])}
        for _ in range(max(1, args.rounds)):  # interleaved, so drift in machine load hits both alike
            one_round(upload, BEFORE, True, results["before"])
            one_round(upload, AFTER, False, results["after"])
        medians = {name: (statistics.median(t.first), statistics.median(t.repeat)) for name, t in results.items()}
        for name, (first, repeat) in medians.items():
            print(f"{upload.label:58} {name:6} {first:8.3f}s {repeat:8.3f}s  {quality(upload, results[name].stored)}")
        (b_first, b_repeat), (a_first, a_repeat) = medians["before"], medians["after"]
        print(f"{'':58} {'ratio':6} {b_first / a_first:8.1f}x {b_repeat / a_repeat:8.0f}x  (before / after)")
    print(f"machine load (1-min load average): {start_load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
