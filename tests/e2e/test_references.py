"""References over real HTTP, on local disk and on S3 (moto): images that belong to someone.

The issue's two-tenant sequence, count semantics, bad input, admin purge, Idempotency-Key,
the avatar replacement recipe of the README, the upload/delete race across two instances,
legacy stores (written by hand in the layout of the version before references) and their
migration, gc, and, at the service level, the interleavings of the protocol forced one by one.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import io
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from proxy import keys
from proxy.config import S3Settings, parse_settings
from proxy.imaging.sanitize import sanitize
from proxy.references import Claim
from proxy.service import ImageService, Ingested
from proxy.storage import Store
from proxy.storage.local import LocalStore
from proxy.storage.s3 import S3Store
from proxy.variants import VariantRequest
from proxy.workpool import WorkPool
from support.checks import assert_error
from support.s3server import AWS_ENV, MotoServer
from support.servers import S3_BACKENDS, Server, new_server

TOKENS = {name: f"{name}-secret-0123456789" for name in ("shop", "blog", "other", "ops")}
AUTH = {"tokens": TOKENS, "admins": ["ops"]}


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[name]}"}


def photo(seed: int, size: tuple[int, int] = (640, 400)) -> bytes:
    """A JPEG of its own per seed (so its own content id), large enough for one working copy."""
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    rng = random.Random(seed)
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = rng.randrange(size[0] - 60), rng.randrange(size[1] - 60)
        draw.rectangle((x, y, x + 60, y + 60), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest) -> Iterator[Server]:
    """One server per backend for this module, with four named tokens; each test uses images of its own."""
    server = new_server(tmp_path_factory.mktemp("refs"), backend, request, auth=AUTH).start()
    yield server
    server.stop()


def upload(c: httpx.Client, data: bytes, token: str, **headers: str) -> httpx.Response:
    return c.post("/img", content=data, headers=bearer(token) | headers)


def held(c: httpx.Client, image: str, token: str) -> list[str]:
    r = c.get(f"/img/{image}/meta", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["held"] == len(r.json()["refs"])
    return sorted(r.json()["refs"])


# --------------------------------------------------------------------------- holders and deletes


def test_two_tenants_one_image_each_delete_takes_only_its_own_reference(srv: Server, corpus: Path) -> None:
    """The issue's sequence: A's delete answers 204 and B's image stays; a third token can delete
    neither reference; once B deletes too, the original, working copies and variants are gone."""
    data = (corpus / "photos/orientation_3.jpg").read_bytes()
    with srv.client() as c:
        a = upload(c, data, "shop")
        b = upload(c, data, "blog")
        assert (a.status_code, b.status_code) == (201, 200)
        image = a.json()["id"]
        assert b.json()["id"] == image and a.json()["ref"] != b.json()["ref"]
        assert c.get(f"/img/{image}?w=400&fmt=webp").status_code == 200
        stored = srv.image_keys(image)
        assert {
            keys.original(image),
            keys.metadata(image),
            keys.variant(image, "400x267-q80.webp"),
            *(keys.working_copy(image, size) for size in ((1280, 853), (800, 533), (480, 320))),
        } < stored

        assert c.delete(f"/img/{image}", headers=bearer("shop")).status_code == 204
        assert c.get(f"/img/{image}?w=400").status_code == 200
        assert c.get(f"/img/{image}?w=320&fmt=webp").status_code == 200  # a new render: the original is there
        assert held(c, image, "blog") == [b.json()["ref"]] and held(c, image, "shop") == []

        before = srv.stored_versions()
        for ref in (a.json()["ref"], b.json()["ref"]):
            assert_error(c.delete(f"/img/{image}/refs/{ref}", headers=bearer("other")), 404, "not_found")
        assert_error(c.delete(f"/img/{image}", headers=bearer("other")), 404, "not_found")
        assert srv.stored_versions() == before

        assert c.delete(f"/img/{image}/refs/{b.json()['ref']}", headers=bearer("blog")).status_code == 204
        assert_error(c.get(f"/img/{image}?w=400"), 404, "not_found")
        assert_error(c.get(f"/img/{image}/meta"), 404, "not_found")
    assert srv.image_keys(image) == set()


def test_n_uploads_by_one_token_take_n_deletes(srv: Server) -> None:
    data = photo(1)
    with srv.client() as c:
        answers = [upload(c, data, "shop") for _ in range(3)]
        image = answers[0].json()["id"]
        assert [r.status_code for r in answers] == [201, 200, 200]
        assert held(c, image, "shop") == sorted(r.json()["ref"] for r in answers)
        for left in (2, 1):
            assert c.delete(f"/img/{image}", headers=bearer("shop")).status_code == 204
            assert len(held(c, image, "shop")) == left
            assert c.get(f"/img/{image}?w=200&fmt=webp").status_code == 200
        assert c.delete(f"/img/{image}", headers=bearer("shop")).status_code == 204
        assert_error(c.delete(f"/img/{image}", headers=bearer("shop")), 404, "not_found")
    assert srv.image_keys(image) == set()


def test_bad_reference_requests_are_clear_4xx_and_change_nothing(srv: Server) -> None:
    with srv.client() as c:
        first = upload(c, photo(2), "shop").json()
        image, ref = first["id"], first["ref"]
        before = srv.stored_versions()
        for bad in ("not-a-ref", ref.upper(), ref[:-1], ref + "a", "0" * 26):
            assert_error(c.delete(f"/img/{image}/refs/{bad}", headers=bearer("shop")), 400, "bad_ref")
        unknown = assert_error(c.delete(f"/img/{image}/refs/{'a' * 26}", headers=bearer("shop")), 404, "not_found")
        foreign = assert_error(c.delete(f"/img/{image}/refs/{ref}", headers=bearer("blog")), 404, "not_found")
        assert foreign == unknown  # another token's reference looks exactly like an unknown one
        assert_error(c.delete(f"/img/{'f' * 32}/refs/{ref}", headers=bearer("shop")), 404, "not_found")
        assert_error(c.delete(f"/img/{image[:-1]}/refs/{ref}", headers=bearer("shop")), 400, "bad_id")
        assert_error(c.delete(f"/img/{image}/refs/{ref}"), 401, "unauthorized")
        assert_error(
            c.delete(f"/img/{image}/refs/{ref}", headers={"authorization": "Bearer wrong-token-0123456"}),
            401,
            "unauthorized",
        )
        assert_error(c.delete(f"/img/{image}/refs/{ref}?purge=true", headers=bearer("shop")), 400, "bad_parameter")
        for query in ("purge=maybe", "purge=true&purge=true", "force=1"):
            assert_error(c.delete(f"/img/{image}?{query}", headers=bearer("ops")), 400, "bad_parameter")
        assert_error(c.delete(f"/img/{image}?purge=true", headers=bearer("shop")), 403, "forbidden")
        assert_error(c.delete(f"/img/{'f' * 32}", headers=bearer("shop")), 404, "not_found")
        assert srv.stored_versions() == before
        assert held(c, image, "shop") == [ref]
        assert_error(
            c.get(f"/img/{image}/meta", headers={"authorization": "Bearer wrong-token-0123456"}), 401, "unauthorized"
        )


def test_meta_with_a_token_counts_the_callers_references_and_is_never_cached(srv: Server) -> None:
    with srv.client() as c:
        refs = sorted(upload(c, photo(3), "blog").json()["ref"] for _ in range(2))
        image = upload(c, photo(3), "shop").json()["id"]
        public = c.get(f"/img/{image}/meta")
        mine = c.get(f"/img/{image}/meta", headers=bearer("blog"))
        none = c.get(f"/img/{image}/meta", headers=bearer("other"))
    assert "held" not in public.json() and "refs" not in public.json()
    assert public.headers["cache-control"].startswith("public") and public.headers["vary"] == "Authorization"
    assert (mine.json()["held"], sorted(mine.json()["refs"])) == (2, refs)
    assert (none.json()["held"], none.json()["refs"]) == (0, [])
    assert mine.headers["cache-control"] == "no-store" and mine.headers["vary"] == "Authorization"
    assert {k: v for k, v in mine.json().items() if k not in ("held", "refs")} == public.json()


def test_an_admin_purge_removes_the_image_for_every_holder(srv: Server) -> None:
    with srv.client() as c:
        image = upload(c, photo(4), "shop").json()["id"]
        upload(c, photo(4), "blog")
        assert c.get(f"/img/{image}?p=thumb&fmt=jpeg").status_code == 200
        assert c.delete(f"/img/{image}?purge=true", headers=bearer("ops")).status_code == 204
        assert_error(c.get(f"/img/{image}?p=thumb&fmt=jpeg"), 404, "not_found")
        assert_error(c.delete(f"/img/{image}?purge=true", headers=bearer("ops")), 404, "not_found")
        assert_error(c.delete(f"/img/{image}", headers=bearer("blog")), 404, "not_found")
    assert srv.image_keys(image) == set()


# --------------------------------------------------------------------------- Idempotency-Key


def test_a_retry_with_the_same_idempotency_key_returns_the_same_reference(srv: Server) -> None:
    key = str(uuid.uuid4())
    data = photo(5)
    with srv.client() as c:
        first = upload(c, data, "shop", **{"idempotency-key": key})
        retries = [
            upload(c, data, "shop", **{"idempotency-key": key}),
            upload(c, data, "shop", **{"idempotency-key": f'"{key}"'}),  # the draft's quoted form
            c.post(
                "/img",
                files={"file": ("avatar.jpg", data, "image/jpeg")},
                headers=bearer("shop") | {"idempotency-key": key},
            ),
        ]
        image, ref = first.json()["id"], first.json()["ref"]
        assert first.status_code == 201
        assert [(r.status_code, r.json()["id"], r.json()["ref"]) for r in retries] == [(201, image, ref)] * 3
        assert held(c, image, "shop") == [ref]

        before = srv.stored_versions()
        reused = upload(c, photo(6), "shop", **{"idempotency-key": key})
        assert_error(reused, 422, "idempotency_key_reused")
        for bad in ('""', "has space", "x" * 256, '"unterminated'):
            assert_error(upload(c, data, "shop", **{"idempotency-key": bad}), 400, "bad_idempotency_key")
        assert srv.stored_versions() == before

        theirs = upload(c, data, "blog", **{"idempotency-key": key})  # keys are scoped to the token
        assert theirs.status_code == 200 and theirs.json()["ref"] != ref
        assert held(c, image, "shop") == [ref] and held(c, image, "blog") == [theirs.json()["ref"]]

        assert c.delete(f"/img/{image}/refs/{ref}", headers=bearer("shop")).status_code == 204
        assert keys.idempotency("shop", ref) not in srv.stored_files()  # the record goes with its reference
        again = upload(c, photo(6), "shop", **{"idempotency-key": key})  # so the key is free again
        assert again.status_code == 201 and again.json()["id"] != image


def test_a_retry_sent_while_the_first_attempt_runs_shares_its_reference(srv: Server) -> None:
    """The derived handle: concurrent attempts with one key write the same reference object."""
    key, data = str(uuid.uuid4()), photo(17)

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
            return await asyncio.gather(
                *(c.post("/img", content=data, headers=bearer("shop") | {"idempotency-key": key}) for _ in range(4))
            )

    answers = asyncio.run(both())
    assert {r.status_code for r in answers} <= {200, 201} and 201 in {r.status_code for r in answers}
    assert len({(r.json()["id"], r.json()["ref"]) for r in answers}) == 1
    with srv.client() as c:
        assert held(c, answers[0].json()["id"], "shop") == [answers[0].json()["ref"]]


class Origin(http.server.BaseHTTPRequestHandler):
    """A web server on loopback to import from: /<seed>.jpg is photo(seed)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = photo(int(self.path.strip("/").removesuffix(".jpg")))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_an_import_retried_with_its_key_must_name_the_same_url(make_server: Any) -> None:
    """For `{"url": ...}` the payload a key is bound to is the URL (the remote's bytes may change)."""
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{origin.server_address[1]}"
    importer = make_server(auth=AUTH, fetch={"allowed_hosts": ["127.0.0.1"], "allowed_networks": ["127.0.0.1/32"]})
    try:
        with importer.client() as c:
            sent = [
                c.post(
                    "/img", json={"url": f"{base}/{seed}.jpg"}, headers=bearer("blog") | {"idempotency-key": "import-1"}
                )
                for seed in (18, 18, 19)
            ]
    finally:
        origin.shutdown()
        origin.server_close()
    assert [r.status_code for r in sent] == [201, 201, 422]
    assert sent[0].json()["ref"] == sent[1].json()["ref"] and sent[2].json()["error"] == "idempotency_key_reused"
    image, ref = sent[0].json()["id"], sent[0].json()["ref"]
    assert importer.stored_files() == {
        keys.original(image),
        keys.metadata(image),
        keys.working_copy(image, (480, 300)),
        keys.reference(image, "blog", ref),
        keys.idempotency("blog", ref),
    }


# --------------------------------------------------------------------------- the replacement recipe


class Watcher:
    """Reads variants of the given images in a loop until stopped; remembers every status."""

    def __init__(self, server: Server) -> None:
        self.server, self.images = server, []
        self.statuses: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, image: str) -> None:
        self.statuses[image] = []
        self.images = [*self.images, image]

    def _run(self) -> None:
        widths = [160, 240, 320, 400]
        with self.server.client() as c:
            while not self._stop.is_set():
                for image in self.images:
                    for w in widths:
                        self.statuses[image].append(c.get(f"/img/{image}?w={w}&fmt=webp").status_code)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_avatar_replacement_never_makes_either_image_unavailable(srv: Server) -> None:
    """README recipe: two users of one app share avatar X. User 1 uploads Y, the app switches to Y,
    then deletes user 1's old reference: X stays for user 2, Y is there from its upload on."""
    x, y = photo(7), photo(8)
    with srv.client() as c, Watcher(srv) as watcher:
        one, two = upload(c, x, "shop").json(), upload(c, x, "shop").json()  # each user's row: id + ref
        watcher.watch(one["id"])
        time.sleep(0.2)
        new = upload(c, y, "shop").json()
        watcher.watch(new["id"])  # from here on the app shows Y for user 1
        time.sleep(0.2)
        assert c.delete(f"/img/{one['id']}/refs/{one['ref']}", headers=bearer("shop")).status_code == 204
        time.sleep(0.2)
    assert watcher.statuses[one["id"]] and set(watcher.statuses[one["id"]]) == {200}
    assert watcher.statuses[new["id"]] and set(watcher.statuses[new["id"]]) == {200}
    with srv.client() as c:
        assert held(c, one["id"], "shop") == [two["ref"]]
        assert c.delete(f"/img/{two['id']}/refs/{two['ref']}", headers=bearer("shop")).status_code == 204
        assert_error(c.get(f"/img/{one['id']}?w=160&fmt=webp"), 404, "not_found")
        assert c.get(f"/img/{new['id']}?w=160&fmt=webp").status_code == 200


# --------------------------------------------------------------------------- two instances, one store


@pytest.fixture
def pair(
    tmp_path_factory: pytest.TempPathFactory, backend: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Server, Server]]:
    """Two service processes on one store: one bucket prefix on S3, one data folder on disk."""
    sections: dict[str, Any] = {"auth": AUTH, "render": {"working_sizes": [128]}, "cache": {"meta_ttl_s": 0.5}}
    first = new_server(
        tmp_path_factory.mktemp("one"), backend, request, prefix=f"pair-{uuid.uuid4().hex[:10]}", **sections
    )
    shared = {"prefix": first.prefix.rstrip("/")} if backend in S3_BACKENDS else {"storage": {"path": str(first.data)}}
    second = new_server(tmp_path_factory.mktemp("two"), backend, request, **shared, **sections)
    servers = [first.start(), second.start()]
    yield servers[0], servers[1]
    for server in servers:
        server.stop()


def test_uploads_racing_the_last_delete_on_another_instance_never_lose_the_image(pair: tuple[Server, Server]) -> None:
    """50 rounds: instance U uploads X while instance D deletes the only reference to X, the delete
    started up to 30 ms after the upload or the upload up to 80 ms after the delete (it has more to
    do before it writes its reference), so both orders and the overlaps between them occur (during
    development, counted in the servers' logs: uploads that waited for a marker, deletes whose second
    listing found the new reference), the instances swapping roles each round. Every 2xx upload must
    leave X whole in the store and readable on both instances; no round may leave metadata without
    its original."""
    data = photo(9, (320, 200))
    rng = random.Random(13)
    owners = ("shop", "blog")
    outcomes: dict[int, int] = {}

    async def after(seconds: float, request: Any) -> httpx.Response:
        await asyncio.sleep(max(0.0, seconds))
        return await request

    async def rounds() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            first = await client.post(pair[0].url + "/img", content=data, headers=bearer("shop"))
            image, ref, holder = first.json()["id"], first.json()["ref"], "shop"
            for n in range(50):
                up, down = (pair[0], pair[1]) if n % 2 == 0 else (pair[1], pair[0])
                uploader = owners[(n + 1) % 2]
                lag = rng.uniform(-0.08, 0.03)  # > 0: the delete starts later; < 0: the upload does
                uploaded, deleted = await asyncio.gather(
                    after(-lag, client.post(up.url + "/img", content=data, headers=bearer(uploader))),
                    after(lag, client.delete(f"{down.url}/img/{image}/refs/{ref}", headers=bearer(holder))),
                )
                assert deleted.status_code == 204, deleted.text
                assert uploaded.status_code in (200, 201), uploaded.text
                outcomes[uploaded.status_code] = outcomes.get(uploaded.status_code, 0) + 1
                stored = pair[0].image_keys(image)
                assert {keys.metadata(image), keys.original(image), keys.working_copy(image, (128, 80))} <= stored, n
                for server in (up, down):
                    w = (64, 96, 128, 160, 200, 240, 320)[n % 7]
                    r = await client.get(f"{server.url}/img/{image}?w={w}&fmt=webp")
                    assert r.status_code == 200, (n, server.url, r.text)
                ref, holder = uploaded.json()["ref"], uploader
                assert [keys.parse_reference(k)[1:] for k in stored if k.startswith(keys.references(image))] == [
                    (holder, ref)
                ]

    asyncio.run(rounds())
    # 201: the delete had removed X before the upload looked, and the upload stored it again.
    print(f"\nrace rounds by upload status: {outcomes}")
    assert set(outcomes) == {200, 201}, "both orders should occur"


# --------------------------------------------------------------------------- legacy stores and migration


def legacy_image(server: Server, data: bytes) -> str:
    """Store `data` as the version before references did: sanitized original and metadata without
    the `legacy` field, no working copies, no reference records. Returns its id."""
    settings = parse_settings({}, Path("."))
    clean = sanitize(data, settings.sanitize, settings.limits)
    image = hashlib.sha256(clean.data).hexdigest()[:32]
    meta = {
        "id": image,
        "width": clean.width,
        "height": clean.height,
        "format": clean.format,
        "bytes": len(clean.data),
        "frames": clean.frames,
        "has_alpha": clean.has_alpha,
        "created": round(time.time(), 3),
        "work": [],
    }
    server.put_stored(keys.original(image), clean.data)
    server.put_stored(keys.metadata(image), json.dumps(meta).encode())
    return image


def test_a_legacy_image_is_held_by_whoever_deletes_it_first(srv: Server) -> None:
    """Without any reference record, the first writer's DELETE takes it (as before references); while
    someone holds a recorded reference, it is theirs, and releasing that leaves it to its legacy holders."""
    data = photo(10)
    image = legacy_image(srv, data)
    with srv.client() as c:
        assert c.get(f"/img/{image}?w=320&fmt=webp").status_code == 200
        ref = upload(c, data, "blog")
        assert (ref.status_code, ref.json()["id"]) == (200, image)
        assert_error(c.delete(f"/img/{image}", headers=bearer("other")), 404, "not_found")
        assert c.delete(f"/img/{image}/refs/{ref.json()['ref']}", headers=bearer("blog")).status_code == 204
        assert c.get(f"/img/{image}?w=200&fmt=webp").status_code == 200  # its legacy holders keep it
        assert c.delete(f"/img/{image}", headers=bearer("other")).status_code == 204
        assert_error(c.get(f"/img/{image}?w=200&fmt=webp"), 404, "not_found")
        assert_error(c.delete(f"/img/{image}", headers=bearer("shop")), 404, "not_found")
    assert srv.image_keys(image) == set()


@pytest.fixture
def lone(make_server: Any) -> Server:
    """A server of its own, for the commands that look at the whole store."""
    return make_server(auth=AUTH)


def test_migrate_refs_gives_each_legacy_image_one_reference(lone: Server) -> None:
    old, shared = legacy_image(lone, photo(11)), legacy_image(lone, photo(12))
    with lone.client() as c:
        assert upload(c, photo(12), "blog").status_code == 200
        fresh = upload(c, photo(13), "blog").json()["id"]
    assert lone.cli("migrate-refs", "--owner", "nobody").returncode == 2
    dry = lone.cli("migrate-refs", "--owner", "shop", "--dry-run")
    assert dry.returncode == 0 and f"would give shop a reference to {old}" in dry.stdout
    assert not any(k.startswith(keys.references(old)) for k in lone.stored_files())

    done = lone.cli("migrate-refs", "--owner", "shop")
    assert done.returncode == 0, done.stderr
    assert sorted(line.split()[-1] for line in done.stdout.splitlines()[:-1]) == sorted([old, shared])
    again = lone.cli("migrate-refs", "--owner", "shop")
    assert again.returncode == 0 and "0 legacy image(s)" in again.stdout
    listed = lone.cli("refs", "--owner", "shop")
    assert sorted(line.split()[0] for line in listed.stdout.splitlines()) == sorted([old, shared])
    assert json.loads(lone.stored(keys.metadata(old)))["legacy"] is False
    everyone = lone.cli("refs").stdout.splitlines()
    assert {tuple(line.split()[:2]) for line in everyone} == {
        (old, "shop"),
        (shared, "shop"),
        (shared, "blog"),
        (fresh, "blog"),
    }

    with lone.client() as c:
        assert_error(c.delete(f"/img/{old}", headers=bearer("other")), 404, "not_found")  # no longer legacy
        assert c.delete(f"/img/{old}", headers=bearer("shop")).status_code == 204
        assert c.delete(f"/img/{shared}", headers=bearer("shop")).status_code == 204
        assert c.get(f"/img/{shared}?w=200&fmt=webp").status_code == 200  # blog still holds it
    assert lone.image_keys(old) == set()


def test_gc_keeps_whatever_a_reference_holds_and_reports_what_nobody_holds(lone: Server) -> None:
    with lone.client() as c:
        kept = upload(c, photo(14), "shop").json()
        orphan = upload(c, photo(15), "shop").json()
        for doc in (kept, orphan):
            assert c.get(f"/img/{doc['id']}?w=320&fmt=webp").status_code == 200
    legacy = legacy_image(lone, photo(16))
    lone.delete_stored(keys.reference(orphan["id"], "shop", orphan["ref"]))  # as a crash mid-delete leaves it
    in_flight = "0123456789abcdef" * 2  # an upload that has written its reference, not yet its metadata
    lone.put_stored(keys.reference(in_flight, "blog", "a" * 26), b"{}")
    lone.put_stored(keys.variant(in_flight, "320x200-q80.webp"), b"not checked by gc")
    gone = "fedcba9876543210" * 2  # neither metadata nor reference: a deleted image's leftover
    lone.put_stored(keys.variant(gone, "320x200-q80.webp"), b"left behind")
    before = lone.stored_files()

    result = lone.cli("gc")
    assert result.returncode == 0, result.stderr
    assert f"unreferenced {orphan['id']}" in result.stdout and f"legacy {legacy}" in result.stdout
    assert f"unreferenced {kept['id']}" not in result.stdout
    assert before - lone.stored_files() == {keys.variant(gone, "320x200-q80.webp")}
    assert "1 unreferenced, 1 legacy image(s)" in result.stdout


def test_cli_purge_and_upload_speak_references(lone: Server, corpus: Path) -> None:
    path = str(corpus / "photos/orientation_5.jpg")
    uploaded = lone.cli("upload", "--url", lone.url, "--token", TOKENS["blog"], path)
    assert uploaded.returncode == 0, uploaded.stderr
    image, _, ref = uploaded.stdout.split()[:3]
    with lone.client() as c:
        assert held(c, image, "blog") == [ref]
        upload(c, (corpus / "photos/orientation_5.jpg").read_bytes(), "shop")
    refused = lone.cli("purge", "--url", lone.url, "--token", TOKENS["shop"], image)
    assert refused.returncode == 1 and "403 forbidden" in refused.stderr
    purged = lone.cli("purge", "--url", lone.url, image)  # the default token is an admin's
    assert purged.returncode == 0 and f"purged {image}" in purged.stdout
    assert lone.image_keys(image) == set()


# --------------------------------------------------------------------------- the protocol, step by step


class Paused:
    """A real store that stops before one kind of call until released: an interleaving made to order."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.when: tuple[str, str] | None = None  # (method, key prefix) to stop before
        self.reached, self.go = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def _gate(self, method: str, key: str) -> None:
        if self.when is not None and method == self.when[0] and key.startswith(self.when[1]):
            self.when = None
            self.reached.set()
            await self.go.wait()

    async def put(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        await self._gate("put", key)
        await self.inner.put(key, data, content_type, cache_control)

    async def delete(self, key: str) -> None:
        await self._gate("delete", key)
        await self.inner.delete(key)


@pytest.fixture
def store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Store]:
    if backend == "local":
        yield LocalStore(tmp_path / "data")
        return
    moto: MotoServer = request.getfixturevalue("shared_moto")
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    s3 = S3Store(S3Settings(bucket=moto.bucket, endpoint_url=moto.endpoint, prefix=f"steps-{uuid.uuid4().hex[:8]}/"), 4)
    yield s3
    asyncio.run(s3.close())


@pytest.fixture
def service(store: Store) -> Iterator[tuple[ImageService, Paused]]:
    paused = Paused(store)
    pool = WorkPool(2, 8, 30)
    yield ImageService(parse_settings({}, Path(".")), paused, pool), paused  # type: ignore[arg-type]
    pool.shutdown()


async def intact(service: ImageService, image: str) -> None:
    service._meta.clear()
    service.variants.drop_image(image)
    variant = await service.variant(image, VariantRequest(w=200, h=None, fit="inside", fmt="webp", q=None), "")
    assert Image.open(io.BytesIO(variant.entry.body)).size == (200, 125)


async def stopped_delete(
    svc: ImageService, paused: Paused, data: bytes, method: str, key: Callable[[str], str]
) -> tuple[Ingested, asyncio.Task[None]]:
    """Upload `data` for shop, then delete that only reference, stopped before the store call
    `method` on `key(id)`: (the upload, the delete's task, to be let go with paused.go)."""
    first = await svc.ingest(data, Claim("shop"))
    paused.when = (method, key(first.meta.id))
    deleting = asyncio.create_task(svc.release(first.meta.id, "shop", first.ref))
    await paused.reached.wait()
    return first, deleting


def test_an_upload_during_a_delete_waits_for_it_then_stores_the_image_again(
    service: tuple[ImageService, Paused],
) -> None:
    """Upload step 2: the reference lands after the delete's second listing (the delete stopped just
    before removing the original, metadata already gone); the upload must not answer before the
    delete is over, and then finds the image missing and writes it back."""
    svc, paused = service

    async def scenario() -> None:
        first, deleting = await stopped_delete(svc, paused, photo(20), "delete", keys.original)
        uploading = asyncio.create_task(svc.ingest(photo(20), Claim("blog")))
        await asyncio.sleep(0.5)
        assert not uploading.done()  # waiting for the delete's marker
        paused.go.set()
        await deleting
        again = await uploading
        assert again.created and again.meta.id == first.meta.id
        assert await svc.held(first.meta.id, "blog") == [again.ref]
        await intact(svc, first.meta.id)

    asyncio.run(scenario())


def test_a_delete_whose_second_listing_sees_a_new_reference_keeps_the_image(
    service: tuple[ImageService, Paused],
) -> None:
    """Delete steps 3-4: the reference lands between the delete's first listing and its marker;
    the upload does not wait (no marker yet) and answers 200, and the delete keeps the image."""
    svc, paused = service

    async def scenario() -> None:
        first, deleting = await stopped_delete(svc, paused, photo(21), "put", keys.deletions)
        again = await asyncio.wait_for(svc.ingest(photo(21), Claim("blog")), 10)
        assert not again.created
        paused.go.set()
        await deleting
        await intact(svc, first.meta.id)

    asyncio.run(scenario())


def test_a_marker_past_its_lease_is_dropped_and_a_late_delete_stops(service: tuple[ImageService, Paused]) -> None:
    """A crashed delete's marker holds uploads back only for its lease; a delete that is itself past
    half its lease starts no further store call, so nothing of it lands after an upload went ahead."""
    svc, _ = service
    data = photo(22)

    async def scenario() -> None:
        first = await svc.ingest(data, Claim("shop"))
        image = first.meta.id
        stale = keys.deletion(image, int((time.time() - svc.references.lease_s - 1) * 1000), "crashed")
        await svc.store.put(stale, b"{}", "application/json", "no-store")
        started = time.monotonic()
        await svc.ingest(data, Claim("blog"))
        assert time.monotonic() - started < svc.references.lease_s / 10
        assert await svc.store.list_keys(keys.deletions(image)) == []

        svc.references.lease_s = 0.0  # every delete is past half its lease at once
        for holder in ("shop", "blog"):
            await svc.release_one(image, holder)
        assert await svc.store.list_keys(keys.references(image)) == []
        await intact(svc, image)  # nothing was deleted; gc reports it as unreferenced

    asyncio.run(scenario())
