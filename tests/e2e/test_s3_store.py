"""The S3 store against real S3 APIs over HTTP: moto's standalone server and Ceph's radosgw.

What must hold: the same semantics as the disk store (missing is None, delete is
idempotent, a prefix delete takes exactly its prefix), the object headers a CDN
reading the bucket relies on, and bounded failure: with S3 stopped or silent,
every call ends in StorageError within the configured timeouts, the event loop
keeps running meanwhile, and the same store works again once S3 is back.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from proxy import keys
from proxy.config import ConfigError, S3Settings, parse_settings
from proxy.storage import IMMUTABLE, NO_STORE, StorageError, create_store
from proxy.storage.s3 import S3Store, pool_size
from support.s3server import AWS_ENV, BlackHole, FullBacklog, StoppableS3
from support.servers import new_server, s3_storage
from support.uploads import upload

T = TypeVar("T")

# Fault settings: 0.5 s timeouts, 2 attempts. Refused or silent, a call must end well
# inside FAULT_BOUND_S even on a loaded 2-core machine (attempts x timeout, plus a backoff of
# at most 0.1 s: botocore's standard mode backs off from 50 ms on non-throttling errors).
FAST_FAIL = {"connect_timeout_s": 0.5, "read_timeout_s": 0.5, "max_attempts": 2}
FAULT_BOUND_S = 10.0


@pytest.fixture
def s3(own_s3: StoppableS3, aws_env: None) -> StoppableS3:
    """The module's server (moto, then radosgw), running again if a fault test left it stopped."""
    if not own_s3.running:
        own_s3.start()
    return own_s3


def s3_settings(endpoint: str, bucket: str, **overrides: Any) -> S3Settings:
    """Settings for one test: a prefix of its own, so tests sharing the bucket never see each other."""
    values: dict[str, Any] = {
        "bucket": bucket,
        "endpoint_url": endpoint,
        "addressing_style": "path",
        "prefix": f"t-{uuid.uuid4().hex[:8]}/",
    } | overrides
    return S3Settings(**values)


def with_store(settings: S3Settings, body: Callable[[S3Store], Awaitable[T]], list_page_size: int = 1000) -> T:
    """Run `body` with a fresh store in a fresh event loop, and close the store after."""

    async def main() -> T:
        store = S3Store(settings, render_slots=2, list_page_size=list_page_size)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


async def failure_seconds(call: Awaitable[object]) -> float:
    """Seconds until `call` raises StorageError (it must)."""
    started = time.monotonic()
    with pytest.raises(StorageError):
        await call
    return time.monotonic() - started


# --------------------------------------------------------------------------- semantics


def test_round_trip_and_missing_keys(s3: StoppableS3) -> None:
    """put/get/exists/delete behave like the disk store; a missing key is a miss, not an error."""

    async def body(store: S3Store) -> None:
        key = "originals/abc"
        assert await store.get(key) is None
        assert not await store.exists(key)
        await store.put(key, b"\xff\xd8 first", "image/jpeg", IMMUTABLE)
        await store.put(key, b"\xff\xd8 second", "image/jpeg", IMMUTABLE)  # overwrite: the last PUT wins whole
        assert await store.get(key) == b"\xff\xd8 second"
        assert await store.exists(key)
        await store.delete(key)
        await store.delete(key)  # deleting what is gone is not an error
        assert await store.get(key) is None
        assert not await store.exists(key)
        await store.ping()

    with_store(s3_settings(s3.endpoint, s3.bucket), body)


def test_prefixes_isolate_stores_sharing_a_bucket(s3: StoppableS3) -> None:
    """Configured prefixes ("tenant", "tenant2") become "tenant/" and "tenant2/": neither store
    reads, nor deletes, the other's objects, even though one name starts with the other."""
    run = uuid.uuid4().hex[:8]

    def configured(prefix: str) -> S3Settings:
        return parse_settings({"storage": s3_storage(s3, prefix)}, Path(".")).storage.s3

    first, second = configured(f"{run}-tenant"), configured(f"/{run}-tenant2/")
    assert (first.prefix, second.prefix) == (f"{run}-tenant/", f"{run}-tenant2/")
    with_store(first, lambda s: s.put("variants/abc/w64.webp", b"first", "image/webp", IMMUTABLE))
    with_store(second, lambda s: s.put("variants/abc/w64.webp", b"second", "image/webp", IMMUTABLE))

    assert with_store(first, lambda s: s.get("variants/abc/w64.webp")) == b"first"
    assert with_store(first, lambda s: s.delete_prefix("variants/")) == 1
    assert with_store(second, lambda s: s.get("variants/abc/w64.webp")) == b"second"
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=run)
    assert [item["Key"] for item in listed["Contents"]] == [f"{run}-tenant2/variants/abc/w64.webp"]


def test_delete_prefix_pages_through_listing_and_spares_neighbours(s3: StoppableS3) -> None:
    """25 objects with 10-key pages: three list pages, three DeleteObjects batches, every
    object gone; "variants/abc2/" shares the first characters but not the prefix, so it stays."""

    async def body(store: S3Store) -> tuple[int, int, bool]:
        await asyncio.gather(
            *(store.put(f"variants/abc/w{i}.webp", b"v", "image/webp", IMMUTABLE) for i in range(25)),
            store.put("variants/abc2/w64.webp", b"v", "image/webp", IMMUTABLE),
        )
        deleted = await store.delete_prefix("variants/abc/")
        again = await store.delete_prefix("variants/abc/")
        return deleted, again, await store.exists("variants/abc2/w64.webp")

    settings = s3_settings(s3.endpoint, s3.bucket)
    assert with_store(settings, body, list_page_size=10) == (25, 0, True)
    left = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=settings.prefix + "variants/abc/")
    assert left["KeyCount"] == 0


def test_missing_bucket_is_an_error_not_a_miss(s3: StoppableS3) -> None:
    """NoSuchBucket is a 404 too, but a broken setup must answer 503, not 'no such image'."""

    async def body(store: S3Store) -> None:
        with pytest.raises(StorageError):
            await store.get("originals/abc")
        with pytest.raises(StorageError):
            await store.ping()

    with_store(s3_settings(s3.endpoint, "no-such-bucket"), body)


def test_missing_credentials_are_a_storage_error(s3: StoppableS3, monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials anywhere in the chain (instance metadata switched off) is StorageError, not a crash."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    async def body(store: S3Store) -> None:
        with pytest.raises(StorageError, match="credentials"):
            await store.get("originals/abc")

    with_store(s3_settings(s3.endpoint, s3.bucket), body)


# --------------------------------------------------------------------------- faults


def test_stopped_s3_fails_fast_and_the_same_store_recovers(s3: StoppableS3) -> None:
    """Refused connections end every call in StorageError within the bound; once S3 is back the
    store's pool drops its dead connections and works. (moto comes back empty, as it keeps state in
    memory; radosgw's gateway keeps none, so the object written before is there again.)"""

    async def body(store: S3Store) -> None:
        await store.put("originals/abc", b"before", "image/jpeg", IMMUTABLE)  # leaves a pooled keep-alive connection
        s3.stop()
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "get": lambda: store.get("originals/abc"),
            "put": lambda: store.put("originals/abc", b"during", "image/jpeg", IMMUTABLE),
            "exists": lambda: store.exists("originals/abc"),
            "delete": lambda: store.delete("originals/abc"),
            "delete_prefix": lambda: store.delete_prefix("variants/"),
            "ping": store.ping,
        }
        seconds = {name: await failure_seconds(call()) for name, call in calls.items()}
        assert max(seconds.values()) < FAULT_BOUND_S, seconds
        s3.start()
        await store.ping()
        assert await store.get("originals/abc") in (None, b"before")  # never b"during": that PUT failed
        await store.put("originals/abc", b"after", "image/jpeg", IMMUTABLE)
        assert await store.get("originals/abc") == b"after"

    with_store(s3_settings(s3.endpoint, s3.bucket, **FAST_FAIL), body)


def test_unreachable_endpoint_fails_after_its_connect_timeouts(aws_env: None) -> None:
    """Connects that never complete (SYNs dropped) end in StorageError after each attempt's connect
    timeout, not the OS's minutes-long default."""

    async def body(store: S3Store) -> float:
        return await failure_seconds(store.get("originals/abc"))

    with FullBacklog() as unreachable:
        seconds = with_store(s3_settings(unreachable.endpoint, "test-bucket", **FAST_FAIL), body)
    assert FAST_FAIL["connect_timeout_s"] * FAST_FAIL["max_attempts"] <= seconds < FAULT_BOUND_S, seconds


def test_silent_endpoint_times_out_without_blocking_the_event_loop(aws_env: None) -> None:
    """A server that accepts and never answers costs about attempts x read timeout, then
    StorageError; meanwhile the event loop keeps ticking, because boto3 runs in the store's threads."""

    async def body(store: S3Store) -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        get_s, put_s = await asyncio.gather(
            failure_seconds(store.get("originals/abc")),
            failure_seconds(store.put("originals/abc", b"x", "image/jpeg", IMMUTABLE)),
        )
        elapsed = time.monotonic() - started
        ticking.cancel()
        # At least one full read timeout per attempt: the read-timeout path, not a refusal.
        assert FAST_FAIL["read_timeout_s"] * FAST_FAIL["max_attempts"] <= min(get_s, put_s)
        assert max(get_s, put_s) < FAULT_BOUND_S, (get_s, put_s)
        # A blocked loop would tick about never; a free one up to every 10 ms (a quarter allows for load).
        assert ticks >= elapsed / 0.01 / 4, (ticks, elapsed)

    with BlackHole() as hole:
        with_store(s3_settings(hole.endpoint, "test-bucket", **FAST_FAIL), body)


# --------------------------------------------------------------------------- config


def test_s3_config_defaults_and_errors_name_the_key() -> None:
    settings = parse_settings({"storage": {"backend": "s3", "s3": {"bucket": "b", "prefix": "imgs"}}}, Path("."))
    assert settings.storage.s3 == S3Settings(bucket="b", prefix="imgs/")
    with pytest.raises(ConfigError, match=r"^storage\.s3\.bucket: required"):
        parse_settings({"storage": {"backend": "s3"}}, Path("."))
    with pytest.raises(ConfigError, match=r"^storage\.s3\.secret_key: unknown key"):
        parse_settings({"storage": {"backend": "s3", "s3": {"bucket": "b", "secret_key": "x"}}}, Path("."))
    with pytest.raises(ConfigError, match=r"^storage\.s3\.addressing_style: must be one of"):
        parse_settings({"storage": {"s3": {"addressing_style": "dns"}}}, Path("."))
    with pytest.raises(ConfigError, match=r"^storage\.s3\.endpoint_url: must start with http"):
        parse_settings({"storage": {"s3": {"endpoint_url": "minio:9000"}}}, Path("."))


def test_backend_s3_builds_an_s3_store_with_a_pool_sized_from_render_concurrency(aws_env: None) -> None:
    """Derived: 2 per render slot plus headroom, never under botocore's 10; a configured size wins."""
    assert pool_size(S3Settings(), render_slots=2) == 10
    assert pool_size(S3Settings(), render_slots=16) == 36
    assert pool_size(S3Settings(max_pool_connections=7), render_slots=16) == 7
    settings = parse_settings({"storage": {"backend": "s3", "s3": {"bucket": "b"}}}, Path("."))
    store = create_store(settings.storage, render_slots=16)
    assert isinstance(store, S3Store)
    asyncio.run(store.close())


# --------------------------------------------------------------------------- end to end


def small_jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_objects_carry_content_type_and_cache_control(
    s3: StoppableS3, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What the service writes: blobs (the original, its working copies, variants) are immutable
    for a CDN reading the bucket; the metadata and the upload's reference, which deletes remove, are no-store."""
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    server = new_server(tmp_path, "local", request, env=AWS_ENV, storage=s3_storage(s3, prefix)).start()
    try:
        with server.client() as http:
            image_id = upload(http, small_jpeg((90, 140, 60), (1000, 700)))["id"]  # large enough for working copies
            assert http.get(f"/img/{image_id}", params={"w": 64, "fmt": "webp"}).status_code == 200
    finally:
        server.stop()
    client = s3.client()
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/")["Contents"]
    heads = {item["Key"][len(prefix) + 1 :]: client.head_object(Bucket=s3.bucket, Key=item["Key"]) for item in listed}
    meta = json.loads(client.get_object(Bucket=s3.bucket, Key=f"{prefix}/{keys.metadata(image_id)}")["Body"].read())
    assert meta["work"], "the upload should have made working copies"
    expected = {
        keys.original(image_id): ("image/jpeg", IMMUTABLE),
        keys.metadata(image_id): ("application/json", NO_STORE),
        keys.variant(image_id, "64x45-q80.webp"): ("image/webp", IMMUTABLE),
    }
    expected |= {keys.working_copy(image_id, (w, h)): ("image/jpeg", IMMUTABLE) for w, h in meta["work"]}
    refs = [key for key in heads if key.startswith(keys.references(image_id))]
    assert len(refs) == 1
    expected[refs[0]] = ("application/json", NO_STORE)
    assert {key: (h["ContentType"], h["CacheControl"]) for key, h in heads.items()} == expected


def test_service_on_s3_answers_503_during_an_outage_and_recovers(
    s3: StoppableS3, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`python -m proxy serve` with backend = "s3": upload and render through the bucket; with S3
    down a new variant is a prompt 503 + Retry-After in the JSON error shape; with S3 back it serves."""
    prefix = f"e2e-{uuid.uuid4().hex[:8]}"
    storage = s3_storage(s3, prefix, connect_timeout_s=0.5, read_timeout_s=2.0, max_attempts=2)
    server = new_server(tmp_path, "local", request, env=AWS_ENV, storage=storage).start()
    try:
        with server.client() as http:
            image_id = upload(http, small_jpeg((200, 40, 40)), expect=201)["id"]
            response = http.get(f"/img/{image_id}", params={"w": 64, "fmt": "webp"})
            assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
            stored = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/{keys.variant_prefix(image_id)}")
            assert stored["KeyCount"] == 1

            s3.stop()
            started = time.monotonic()
            response = http.get(f"/img/{image_id}", params={"w": 128, "fmt": "webp"})
            seconds = time.monotonic() - started
            assert response.status_code == 503
            assert set(response.json()) == {"error", "detail"}
            assert int(response.headers["retry-after"]) > 0
            assert seconds < FAULT_BOUND_S, seconds

            s3.start()  # moto comes back empty (it keeps state in memory), so upload a new image
            other_id = upload(http, small_jpeg((40, 40, 200)), expect=201)["id"]
            response = http.get(f"/img/{other_id}", params={"w": 64, "fmt": "webp"})
            assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
    finally:
        server.stop()
