"""References: who holds a stored image, kept so that no delete removes what an upload still uses.

An image is stored once per content id however many uploads brought it. Each successful
upload adds one *reference* for its caller (a token name): a small object
`refs/<id>/<owner>/<ref>.json` of its own. One object per reference, not a counter in one
shared object, because S3 has no transactions: concurrent uploads and deletes on any number
of instances each write or delete only their own object (a PUT or DELETE of one object is
atomic), and a listing of `refs/<id>/` counts the holders (S3 listings are strongly
consistent with the writes before them; so is a local folder).

What this module keeps besides the references:

- **Deletion markers** `deleting/<id>/<ms>-<nonce>.json`: the delete of the last reference
  writes one before it confirms that no reference is left and holds it until it has removed
  the image; an upload that has written its reference waits for markers to go before it
  checks that the image is stored. Each side writes its own object, then lists the other
  side's: whichever writes second sees the first, so either the delete sees the upload's
  reference and keeps the image, or the upload sees the marker and waits, then writes back
  what the delete removed (proxy.service has the whole protocol and why).
- **Idempotency records** `idempotency/<owner>/<ref>.json`: the upload that an
  `Idempotency-Key` made (its image, a fingerprint of the payload, its status). The ref of a
  keyed upload is derived from the owner and the key, so a retry writes the same reference
  object again and never adds a second, even when the first attempt is still running on
  another instance.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

from proxy import keys
from proxy.config import StorageSettings
from proxy.storage import NO_STORE, Store

REF_PATTERN = re.compile(r"[a-z2-7]{26}")  # 128 bits in lowercase base32: safe in URLs and storage keys
MIN_LEASE_S = 30.0  # how long a deletion marker is trusted at least (see lease_for)
POLL_S = 0.02  # how often an upload waiting for a delete looks again; deletes take milliseconds


class NotHeld(Exception):
    """The caller holds no such reference. An unknown handle and another token's answer the same."""


class IdempotencyKeyReused(Exception):
    """The Idempotency-Key was used by this token before, for a different payload."""


@dataclass(frozen=True)
class Claim:
    """Who an upload is for: the token name that will hold its reference, and its Idempotency-Key if any."""

    owner: str
    idempotency_key: str | None = None

    def ref(self) -> str:
        """The handle of the reference this upload makes: derived from the key, so retries share it."""
        if self.idempotency_key is None:
            return _handle(secrets.token_bytes(16))
        return _handle(hashlib.sha256(f"{self.owner}\n{self.idempotency_key}".encode()).digest()[:16])


def _handle(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def fingerprint(kind: str, payload: bytes) -> str:
    """What a retry must repeat to count as the same request: the image bytes, or the import URL."""
    return hashlib.sha256(kind.encode() + b"\n" + payload).hexdigest()


@dataclass(frozen=True)
class Reference:
    image: str
    owner: str
    ref: str
    created: float
    fingerprint: str | None = None  # of the payload, for a reference an Idempotency-Key made

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()


@dataclass(frozen=True)
class KeyedUpload:
    """The idempotency record: what the first upload with a key did, for its retries."""

    image: str
    fingerprint: str
    created: bool  # the first answer was 201 (it stored the image), else 200

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> KeyedUpload:
        return cls(**json.loads(data))


def lease_for(storage: StorageSettings) -> float:
    """How long a deletion marker holds back uploads of its image before it counts as abandoned.

    A delete stops starting store calls at half its lease (proxy.service), so the lease must
    be at least twice the longest one store call may take (every attempt timing out); then a
    marker that outlived its lease belongs to a delete that crashed or gave up, and nothing
    it started can still land.
    """
    s3 = storage.s3
    worst_call = s3.max_attempts * (s3.connect_timeout_s + s3.read_timeout_s) if storage.backend == "s3" else 0.0
    return max(MIN_LEASE_S, 2 * worst_call)


class References:
    """The reference records of a store, with the deletion markers and idempotency records."""

    def __init__(self, store: Store, lease_s: float) -> None:
        self.store = store
        self.lease_s = lease_s

    # ---------------------------------------------------------------- references

    async def add(self, reference: Reference) -> None:
        await self.store.put(
            keys.reference(reference.image, reference.owner, reference.ref),
            reference.to_json(),
            "application/json",
            NO_STORE,
        )

    async def holds(self, image_id: str, owner: str, ref: str) -> bool:
        return await self.store.exists(keys.reference(image_id, owner, ref))

    async def held(self, image_id: str, owner: str) -> list[str]:
        """The handles of the references `owner` holds to the image, in key order."""
        return [keys.parse_reference(key)[2] for key in await self.store.list_keys(keys.held_by(image_id, owner))]

    async def holders(self, image_id: str) -> list[tuple[str, str]]:
        """(owner, ref) of every reference to the image."""
        return [keys.parse_reference(key)[1:] for key in await self.store.list_keys(keys.references(image_id))]

    async def remove(self, image_id: str, owner: str, ref: str) -> None:
        """Drop the reference, then the idempotency record that made it (if a key did): in that order,
        so a retry that still finds the record also finds, and rewrites, its reference."""
        await self.store.delete(keys.reference(image_id, owner, ref))
        await self.store.delete(keys.idempotency(owner, ref))

    # ---------------------------------------------------------------- idempotency

    async def keyed(self, claim: Claim, payload: str) -> KeyedUpload | None:
        """The first upload with this claim's key, or None; IdempotencyKeyReused when its payload differed."""
        raw = await self.store.get(keys.idempotency(claim.owner, claim.ref()))
        if raw is None:
            return None
        first = KeyedUpload.from_json(raw)
        if first.fingerprint != payload:
            raise IdempotencyKeyReused(claim.idempotency_key)
        return first

    async def remember(self, claim: Claim, upload: KeyedUpload) -> None:
        await self.store.put(keys.idempotency(claim.owner, claim.ref()), upload.to_json(), "application/json", NO_STORE)

    # ---------------------------------------------------------------- deletes in progress

    async def begin_delete(self, image_id: str) -> str:
        """Write this delete's marker; returns its key for end_delete."""
        key = keys.deletion(image_id, int(time.time() * 1000), secrets.token_hex(8))
        await self.store.put(key, b"{}", "application/json", NO_STORE)
        return key

    async def end_delete(self, marker: str) -> None:
        await self.store.delete(marker)

    async def wait_for_deletes(self, image_id: str) -> None:
        """Return once no delete of the image is in progress; markers past their lease are dropped.

        Called after the caller's reference is written: a delete that begins later sees that
        reference and keeps the image, so only the ones already running need waiting for.
        """
        while True:
            running = []
            for marker in await self.store.list_keys(keys.deletions(image_id)):
                if time.time() - keys.deletion_started(marker) > self.lease_s:
                    await self.store.delete(marker)  # its delete crashed or gave up: nothing of it can still land
                else:
                    running.append(marker)
            if not running:
                return
            await asyncio.sleep(POLL_S)
