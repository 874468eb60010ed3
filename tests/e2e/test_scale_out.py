"""Scale-out on S3: stateless instances sharing one bucket, and storage failures mid-flight.

Two uvicorn processes point at the same bucket and prefix (moto, then radosgw, over HTTP). A
variant rendered by one is served by the other from S3 with no second render;
concurrent first requests on both leave a valid object; a delete on one
reaches the other. Service-level tests inject S3 failures between the writes
of an upload and after a render.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from proxy import keys
from proxy.config import S3Settings, parse_settings
from proxy.references import Claim
from proxy.service import ImageService, NotFound
from proxy.storage import StorageError
from proxy.storage.s3 import S3Store
from proxy.variants import VariantRequest
from proxy.workpool import WorkPool
from support.s3server import AWS_ENV, S3Server, StoppableS3
from support.servers import S3_BACKENDS, Server, new_server, s3_storage


def two_instances(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, meta_ttl_s: float
) -> Iterator[tuple[Server, Server]]:
    """Two instances on one bucket and prefix of the S3 implementation `request.param` names."""
    prefix = f"pair-{uuid.uuid4().hex[:10]}"
    servers = [
        new_server(
            tmp_path_factory.mktemp(name), request.param, request, prefix=prefix, cache={"meta_ttl_s": meta_ttl_s}
        ).start()
        for name in ("a", "b")
    ]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


@pytest.fixture(params=list(S3_BACKENDS))
def pair(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[tuple[Server, Server]]:
    """Two instances that trust their cached metadata for 0.5 s."""
    yield from two_instances(tmp_path_factory, request, 0.5)


def test_a_variant_rendered_on_one_instance_is_served_by_the_other(pair: tuple[Server, Server], corpus: Path) -> None:
    a, b = pair
    queries = ["w=400&fmt=webp", "w=800&fmt=avif", "p=thumb&fmt=jpeg", "h=320&fmt=png"]
    with a.client() as ca, b.client() as cb:
        ids = [
            ca.post("/img", content=(corpus / p).read_bytes()).json()["id"]
            for p in ("photos/nokia_8.3_5g_gps_9mp.jpg", "photos/orientation_6.jpg")
        ]
        first = {(i, q): ca.get(f"/img/{i}?{q}") for i in ids for q in queries}
        second = {(i, q): cb.get(f"/img/{i}?{q}") for i in ids for q in queries}
        assert cb.get(f"/img/{ids[0]}/meta").json()["id"] == ids[0]  # uploaded on a, known to b
    assert {r.headers["x-cache-tier"] for r in first.values()} == {"render"}
    assert {r.headers["x-cache-tier"] for r in second.values()} == {"store"}
    assert all(first[k].content == second[k].content for k in first)
    assert a.health()["renders"] == len(first) and b.health()["renders"] == 0  # one render per variant


def test_concurrent_first_requests_on_both_instances_leave_a_valid_object(
    pair: tuple[Server, Server], corpus: Path
) -> None:
    a, b = pair
    with a.client() as ca:
        image = ca.post("/img", content=(corpus / "photos/sony_hdr-as300_gps_8mp_mpo.jpg").read_bytes()).json()["id"]
    widths = [320, 480, 640, 960, 1280]

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return await asyncio.gather(
                *(client.get(f"{srv.url}/img/{image}?w={w}&fmt=webp") for w in widths for srv in (a, b))
            )

    responses = asyncio.run(both())
    assert {r.status_code for r in responses} == {200}
    for w in widths:
        key = keys.variant(image, next(n for n in a.variant_files(image) if n.startswith(f"{w}x")))
        stored = a.stored(key)
        served = {r.content for r in responses if r.url.params["w"] == str(w)}
        assert served == {stored}, f"w={w}: both instances serve exactly the stored object"
        assert Image.open(io.BytesIO(stored)).size[0] == w
    assert a.health()["renders"] + b.health()["renders"] <= 2 * len(widths)


def test_a_delete_on_one_instance_reaches_the_other(pair: tuple[Server, Server], corpus: Path) -> None:
    a, b = pair
    with a.client() as ca, b.client() as cb:
        image = ca.post("/img", content=(corpus / "photos/orientation_2.jpg").read_bytes()).json()["id"]
        assert ca.get(f"/img/{image}?w=200&fmt=webp").status_code == 200
        assert ca.get(f"/img/{image}?w=200&fmt=webp").headers["x-cache-tier"] == "memory"
        assert cb.delete(f"/img/{image}").status_code == 204
        time.sleep(0.7)  # cache.meta_ttl_s = 0.5
        assert ca.get(f"/img/{image}?w=200&fmt=webp").status_code == 404
    assert a.stored_files() == set()


META_TTL_S = 2.0


@pytest.fixture(params=list(S3_BACKENDS))
def slow_pair(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[tuple[Server, Server]]:
    """Two instances that trust their cached metadata for META_TTL_S: time to watch a memo outlive a delete."""
    yield from two_instances(tmp_path_factory, request, META_TTL_S)


def test_memory_hits_stop_within_meta_ttl_of_a_delete_elsewhere(slow_pair: tuple[Server, Server], corpus: Path) -> None:
    """A variant B serves from memory, also through a URL memo made after A's delete (while B still
    trusts its metadata), turns 404 within cache.meta_ttl_s of the delete: no memo outlives the
    metadata record it was made from (with the memo on its own clock this took up to twice as long)."""
    a, b = slow_pair
    first_accept = {"accept": "image/webp,*/*"}
    other_accept = {"accept": "*/*"}  # the same variant (fmt is explicit), another memo entry
    with a.client() as ca, b.client() as cb:
        image = ca.post("/img", content=(corpus / "photos/orientation_5.jpg").read_bytes()).json()["id"]
        url = f"/img/{image}?w=200&fmt=webp"
        assert cb.get(url, headers=first_accept).headers["x-cache-tier"] == "render"  # B trusts its metadata now
        assert cb.get(url, headers=first_accept).headers["x-cache-tier"] == "memory"
        deleted = time.monotonic()
        assert ca.delete(f"/img/{image}").status_code == 204
        time.sleep(META_TTL_S / 2)
        assert cb.get(url, headers=other_accept).headers["x-cache-tier"] == "memory"  # a new memo entry
        answers: list[tuple[float, int, str]] = []
        while time.monotonic() - deleted < 2 * META_TTL_S and not (answers and answers[-1][1] == 404):
            r = cb.get(url, headers=other_accept)
            answers.append((time.monotonic() - deleted, r.status_code, r.headers.get("x-cache-tier", "")))
            time.sleep(0.02)
    assert {(status, tier) for _, status, tier in answers[:-1]} <= {(200, "memory")}
    seconds, status, _ = answers[-1]
    assert status == 404 and seconds < META_TTL_S + 0.5, answers[-3:]


def test_upload_during_an_outage_is_503_and_stores_nothing(
    own_s3: StoppableS3, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, corpus: Path
) -> None:
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    storage = s3_storage(own_s3, prefix, connect_timeout_s=0.5, read_timeout_s=2.0)
    srv = new_server(tmp_path_factory.mktemp("outage"), "local", request, env=AWS_ENV, storage=storage).start()
    try:
        own_s3.stop()
        started = time.monotonic()
        with srv.client() as c:
            r = c.post("/img", content=(corpus / "photos/orientation_1.jpg").read_bytes())
        assert r.status_code == 503 and r.json()["error"] == "storage_unavailable"
        assert r.headers["retry-after"] and time.monotonic() - started < 10
        assert httpx.get(srv.url + "/readyz").status_code == 503
        own_s3.start()  # moto comes back empty, radosgw with its data: either way nothing half-written
        assert httpx.get(srv.url + "/readyz").status_code == 200
        assert own_s3.client().list_objects_v2(Bucket=own_s3.bucket, Prefix=prefix).get("KeyCount", 0) == 0
    finally:
        srv.stop()
        if not own_s3.running:
            own_s3.start()


# --------------------------------------------------------------------------- service level, injected faults


class FlakyStore:
    """A real S3Store whose puts fail for keys `fail_when` picks (an S3 outage at that moment)."""

    def __init__(self, inner: S3Store, fail_when: Callable[[str], bool]) -> None:
        self.inner, self.fail_when = inner, fail_when

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def put(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        if self.fail_when(key):
            raise StorageError(f"injected failure writing {key}")
        await self.inner.put(key, data, content_type, cache_control)


def service_on(s3: S3Server, fail_when: Callable[[str], bool]) -> tuple[ImageService, S3Store]:
    settings = parse_settings({"storage": {"backend": "s3", "s3": {"bucket": s3.bucket}}}, Path("."))
    store = S3Store(
        S3Settings(
            bucket=s3.bucket,
            endpoint_url=s3.endpoint,
            addressing_style="path",
            prefix=f"faults-{uuid.uuid4().hex[:8]}/",
        ),
        4,
    )
    return ImageService(settings, FlakyStore(store, fail_when), WorkPool(2, 8, 30)), store  # type: ignore[arg-type]


def test_upload_cut_between_original_and_metadata_leaves_no_readable_image(
    shared_s3: S3Server, corpus: Path, aws_env: None
) -> None:
    data = (corpus / "photos/orientation_3.jpg").read_bytes()

    async def scenario() -> None:
        broken, store = service_on(shared_s3, lambda key: keys.parse_metadata(key) is not None)
        with pytest.raises(StorageError):
            await broken.ingest(data, Claim("shop"))
        healthy = ImageService(broken.settings, store, broken.pool)
        image_id = (await healthy.ingest(data, Claim("shop"))).meta.id  # a retry works, and is a new image (201)
        await store.delete(keys.metadata(image_id))  # the state the failed upload left
        for service in (broken, healthy):
            service._meta.clear()
            with pytest.raises(NotFound):
                await service.variant(image_id, VariantRequest(w=64, h=None, fit="inside", fmt="webp", q=None), "")
        again = await healthy.ingest(data, Claim("shop"))
        assert again.created and again.meta.id == image_id
        await store.close()

    asyncio.run(scenario())


def test_variant_that_cannot_be_stored_is_still_served_and_counted(
    shared_s3: S3Server, corpus: Path, aws_env: None
) -> None:

    async def scenario() -> None:
        service, store = service_on(shared_s3, lambda key: key.startswith(keys.VARIANTS))
        meta = (await service.ingest((corpus / "photos/orientation_4.jpg").read_bytes(), Claim("shop"))).meta
        variant = await service.variant(meta.id, VariantRequest(w=200, h=None, fit="inside", fmt="webp", q=None), "")
        assert variant.tier == "render" and Image.open(io.BytesIO(variant.entry.body)).size == (200, 133)
        assert service.store_write_errors == 1
        assert await store.get(keys.variant(meta.id, "200x133-q80.webp")) is None
        await store.close()

    asyncio.run(scenario())
