"""Every storage fault is a 503, proven through a fault-injecting proxy in front of real S3 servers.

The service (`python -m proxy serve`, backend = "s3") talks to moto or radosgw through
support.faultproxy.FaultProxy, which refuses, black-holes, delays, resets or cuts
connections at a chosen byte of a response's head or body, or of a request. Each fault
kind, on each operation that needs the store (GET of a new variant, upload, meta,
delete), must answer 503 `storage_unavailable` as JSON with Retry-After, never 500, and
within the bound computed from the config:

    one store call <= max_attempts x (connect_timeout_s + read_timeout_s)
                      + botocore's backoff before each retry (at most 50 ms x 2^(i-1) before retry i)

With the settings below (0.5 s, 0.5 s, 2 attempts) that is 2.05 s. A faulted request fails
on its first store call, and the answer must arrive within that bound plus MARGIN_S
(the service's own work and a loaded 2-core machine).

Then 50 concurrent uploads under seeded random cuts: no 500, every 2xx image whole in
the bucket, no metadata without its original.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from PIL import Image

from proxy import keys
from proxy.config import S3Settings, parse_settings
from proxy.storage import StorageError
from proxy.storage.s3 import S3Store
from support.checks import assert_error
from support.faultproxy import Fault, FaultProxy, random_cuts
from support.s3server import AWS_ENV, S3Server
from support.servers import S3_BACKENDS, Server, new_server, s3_storage
from support.uploads import upload

FAST_FAIL = {"connect_timeout_s": 0.5, "read_timeout_s": 0.5, "max_attempts": 2}
MARGIN_S = 1.5
META_TTL_S = 0.3  # short, so that a meta request reads the store again


def call_bound_s(settings: S3Settings) -> float:
    """The longest one store call may take under these settings (see the module docstring)."""
    backoff = sum(0.05 * 2 ** (i - 1) for i in range(1, settings.max_attempts))
    return settings.max_attempts * (settings.connect_timeout_s + settings.read_timeout_s) + backoff


NOT_METADATA = r"^(?!.*\.json[ ?])"  # every request but those for an image's metadata document

# Each fault kind, with a cut point that breaks the exchange: inside the status line, after the
# status code (a status with no headers and so no body), a few bytes into the body, inside the
# request head. Every operation starts with a read (the metadata, or the new variant's lookup),
# and a read cut anywhere is a fault. (A write's answer cut after its status line is no fault:
# S3 has said 200. test_an_upload_whose_puts_are_answered_cut_ends_within_the_bound.)
FAULTS = {
    "refuse": Fault("refuse"),
    "black_hole": Fault("black_hole"),
    "latency": Fault("latency", delay_s=2 * FAST_FAIL["read_timeout_s"]),
    "reset": Fault("reset"),
    "cut_status_line": Fault("cut_head", at=8),
    "cut_headers": Fault("cut_head", at=20),
    "cut_body": Fault("cut_body", at=5),
    "cut_request": Fault("cut_request", at=100),
}


def noise_jpeg(seed: int, size: tuple[int, int] = (320, 240)) -> bytes:
    """A JPEG no other test uploads (so its upload is new), of noise (so it is not tiny)."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, "JPEG", quality=85)
    return out.getvalue()


@dataclass
class Rig:
    """One service on S3 through a fault proxy, and a direct client on the bucket to check it."""

    s3: S3Server
    proxy: FaultProxy
    server: Server
    prefix: str
    settings: S3Settings

    def keys(self) -> set[str]:
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=self.s3.bucket, Prefix=self.prefix)
        return {item["Key"][len(self.prefix) :] for page in pages for item in page.get("Contents", [])}

    def stored(self, key: str) -> bytes:
        return bytes(self.s3.client().get_object(Bucket=self.s3.bucket, Key=self.prefix + key)["Body"].read())

    def assert_whole(self, image_id: str) -> None:
        """The stored original is the image the id names (the id is its hash) and decodes fully."""
        original = self.stored(keys.original(image_id))
        assert hashlib.sha256(original).hexdigest()[:32] == image_id
        Image.open(io.BytesIO(original)).load()


def faulty_rig(s3: S3Server, folder: Path, request: pytest.FixtureRequest, prefix: str) -> Rig:
    """`prefix` is fixed, not random: the random cuts are drawn per request line, which holds it."""
    proxy = FaultProxy(s3.endpoint)
    storage = s3_storage(s3, prefix, endpoint=proxy.endpoint, **FAST_FAIL)
    settings = parse_settings({"storage": storage}, folder).storage.s3
    server = new_server(folder, "local", request, env=AWS_ENV, storage=storage, cache={"meta_ttl_s": META_TTL_S})
    try:
        server.start()
    except BaseException:
        proxy.stop()
        raise
    return Rig(s3, proxy, server, prefix + "/", settings)


@pytest.fixture(scope="module", params=list(S3_BACKENDS))
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """A service on each S3 implementation in turn, reached through a fault proxy."""
    s3: S3Server = request.getfixturevalue(S3_BACKENDS[request.param])
    rig = faulty_rig(s3, tmp_path_factory.mktemp("faults"), request, "faults")
    yield rig
    rig.server.stop()
    rig.proxy.stop()


@pytest.fixture
def healthy(rig: Rig) -> Iterator[Rig]:
    """The rig with no fault injected, before and after the test."""
    rig.proxy.heal()
    yield rig
    rig.proxy.heal()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_storage_503(response: httpx.Response, seconds: float, bound_s: float) -> None:
    assert_error(response, 503, "storage_unavailable")
    assert int(response.headers["retry-after"]) > 0
    assert seconds < bound_s, f"answered after {seconds:.2f}s, over the bound {bound_s:.2f}s"


# --------------------------------------------------------------------------- every fault x every operation

SEEDS = iter(range(10_000, 20_000))  # a fresh image per case


def fault_on(operation: str, fault: Fault) -> Fault:
    """The fault for this operation: for a new variant, everything but the metadata (which the
    service has in memory or reads first), so that the fault lands on the variant's own reads."""
    if operation == "variant" and fault.kind != "refuse":
        return Fault(fault.kind, at=fault.at, delay_s=fault.delay_s, match=NOT_METADATA)
    return fault


@pytest.mark.parametrize("operation", ["variant", "upload", "meta", "delete"])
@pytest.mark.parametrize("kind", list(FAULTS))
def test_each_fault_on_each_operation_is_a_prompt_503(healthy: Rig, kind: str, operation: str) -> None:
    rig = healthy
    fault = fault_on(operation, FAULTS[kind])
    data = noise_jpeg(next(SEEDS))
    requests: dict[str, Callable[[httpx.Client, str], httpx.Response]] = {
        "variant": lambda http, image_id: http.get(f"/img/{image_id}", params={"w": 200, "fmt": "webp"}),
        "upload": lambda http, image_id: http.post("/img", content=data),
        "meta": lambda http, image_id: http.get(f"/img/{image_id}/meta"),
        "delete": lambda http, image_id: http.delete(f"/img/{image_id}"),
    }
    with rig.server.client() as http:
        image_id = ""
        if operation != "upload":
            image_id = upload(http, data, expect=201)["id"]
            time.sleep(META_TTL_S * 1.5)  # the metadata leaves this instance's memory, so the store is read
        applied = rig.proxy.applied[fault.kind]
        rig.proxy.inject(fault)
        response, seconds = timed(lambda: requests[operation](http, image_id))
        rig.proxy.heal()
    assert rig.proxy.applied[fault.kind] > applied, f"the {kind} fault never fired: the test proved nothing"
    assert_storage_503(response, seconds, call_bound_s(rig.settings) + MARGIN_S)


@pytest.mark.parametrize("kind", ["refuse", "black_hole", "reset"])
def test_during_a_fault_readyz_is_503_memory_hits_serve_and_recovery_is_automatic(healthy: Rig, kind: str) -> None:
    """Recovery needs nothing but S3 back: the next readiness check and render go through."""
    rig = healthy
    with rig.server.client() as http:
        image_id = upload(http, noise_jpeg(next(SEEDS)), expect=201)["id"]
        assert http.get(f"/img/{image_id}", params={"w": 128, "fmt": "webp"}).status_code == 200
        rig.proxy.inject(FAULTS[kind])
        # At once: a memory hit needs the image's metadata in memory, kept for META_TTL_S here.
        hit = http.get(f"/img/{image_id}", params={"w": 128, "fmt": "webp"})
        assert hit.status_code == 200 and hit.headers["x-cache-tier"] == "memory"
        ready, seconds = timed(lambda: http.get("/readyz"))
        assert_storage_503(ready, seconds, call_bound_s(rig.settings) + MARGIN_S)
        rig.proxy.heal()
        recovered, seconds = timed(lambda: http.get("/readyz"))
        assert recovered.status_code == 200 and seconds < MARGIN_S, (recovered.text, seconds)
        assert http.get(f"/img/{image_id}", params={"w": 160, "fmt": "webp"}).headers["x-cache-tier"] == "render"


# --------------------------------------------------------------------------- the store itself


def test_reads_cut_short_are_faults_never_data(healthy: Rig, aws_env: None) -> None:
    """A body shorter than its Content-Length, a head cut after its status line (a 200 that says
    nothing more, whose body then "ends" at once), an error document cut before it names NoSuchKey,
    a listing cut anywhere: each is StorageError, never bytes, a miss or an empty listing. (Run on a
    store of the test's own, in a bounded event loop: a hang fails the test instead of stalling it.)"""
    rig = healthy
    settings = replace(rig.settings, prefix=f"{rig.prefix}store-{uuid.uuid4().hex[:6]}/")
    client = rig.s3.client()
    client.put_object(Bucket=rig.s3.bucket, Key=settings.prefix + "originals/abc", Body=b"x" * 5000)
    client.put_object(Bucket=rig.s3.bucket, Key=settings.prefix + "variants/abc/w64.webp", Body=b"v")
    cuts = [Fault("cut_body", at=5), Fault("cut_head", at=20), Fault("cut_head", at=60)]

    async def outcome(call: Awaitable[object]) -> str:
        try:
            return f"returned {await call!r:.20}"
        except StorageError:
            return "StorageError"

    async def body(store: S3Store) -> dict[Fault, list[str]]:
        assert await store.get("originals/abc") == b"x" * 5000  # whole when nothing is cut
        outcomes: dict[Fault, list[str]] = {}
        for fault in cuts:
            rig.proxy.inject(fault)
            outcomes[fault] = [
                await outcome(store.get("originals/abc")),
                await outcome(store.get("originals/none")),
                await outcome(store.delete_prefix("variants/")),
                await outcome(store.list_keys("variants/")),
            ]
            rig.proxy.heal()
        assert await store.list_keys("variants/") == ["variants/abc/w64.webp"]  # the cut deletes deleted nothing
        return outcomes

    async def main() -> dict[Fault, list[str]]:
        store = S3Store(settings, render_slots=2)
        try:
            return await asyncio.wait_for(body(store), 12 * call_bound_s(settings) + MARGIN_S)
        finally:
            await store.close()

    assert asyncio.run(main()) == {fault: ["StorageError"] * 4 for fault in cuts}


@pytest.mark.parametrize("at", [8, 20])
def test_an_upload_whose_puts_are_answered_cut_ends_within_the_bound(healthy: Rig, at: int) -> None:
    """Every PUT's answer cut inside its status line: 503. Cut after it: S3 has said 200 to each
    write, so the upload is stored, whole. Never a hang: with "Expect: 100-continue" botocore read
    the interim answer in a loop that spins forever on EOF, so a cut there lost a store thread at
    100% CPU and the upload was never answered."""
    rig = healthy
    data = noise_jpeg(next(SEEDS))
    bound_s = call_bound_s(rig.settings) + MARGIN_S
    applied = rig.proxy.applied["cut_head"]
    with rig.server.client() as http:
        rig.proxy.inject(Fault("cut_head", at=at, match="^PUT "))
        response, seconds = timed(lambda: http.post("/img", content=data, timeout=bound_s))
        rig.proxy.heal()
    assert rig.proxy.applied["cut_head"] > applied
    if at < len("HTTP/1.1 200"):
        assert_storage_503(response, seconds, bound_s)
    else:
        assert response.status_code == 201 and seconds < bound_s, (response.text, seconds)
        rig.assert_whole(response.json()["id"])


# --------------------------------------------------------------------------- concurrent uploads, random cuts


def test_concurrent_uploads_under_random_cuts(healthy: Rig) -> None:
    """50 uploads at once while a seeded quarter of S3 requests are cut (head, body, request, reset):
    none answers 500; each 201 names an original that is whole in the bucket, with its metadata;
    no metadata document is left without its original; with S3 healthy again, every one renders."""
    rig = healthy
    images = [noise_jpeg(seed, (600, 400)) for seed in range(50)]
    before = sum(rig.proxy.applied.values())
    rig.proxy.inject(random_cuts(seed=16, rate=0.25))

    async def all_at_once() -> list[httpx.Response]:
        auth = {"authorization": f"Bearer {rig.server.token}"}
        async with httpx.AsyncClient(base_url=rig.server.url, headers=auth, timeout=60) as client:
            return await asyncio.gather(*(client.post("/img", content=data) for data in images))

    responses = asyncio.run(all_at_once())
    rig.proxy.heal()
    statuses = [r.status_code for r in responses]
    assert sum(rig.proxy.applied.values()) - before > 20, rig.proxy.applied  # the cuts really happened
    assert set(statuses) <= {201, 503}, statuses
    for r in responses:
        if r.status_code == 503:
            assert_error(r, 503, "storage_unavailable")
    created = [r.json()["id"] for r in responses if r.status_code == 201]
    assert 0 < len(created) < len(images), f"{len(created)} of 50 created: the cuts should fail some, not all"

    stored = rig.keys()
    described = {image_id for key in stored if (image_id := keys.parse_metadata(key)) is not None}
    assert {image_id for image_id in described if keys.original(image_id) not in stored} == set(), (
        "metadata without its original"
    )
    assert set(created) <= described
    with rig.server.client() as http:
        for image_id in created:
            rig.assert_whole(image_id)
            variant = http.get(f"/img/{image_id}", params={"w": 320, "fmt": "webp"})
            assert variant.status_code == 200
            assert Image.open(io.BytesIO(variant.content)).size == (320, 213)
