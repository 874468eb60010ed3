"""proxy.references without a store: reference handles, payload fingerprints, records, the lease."""

from __future__ import annotations

from proxy.config import S3Settings, StorageSettings
from proxy.references import MIN_LEASE_S, REF_PATTERN, Claim, KeyedUpload, Reference, fingerprint, lease_for


def test_a_keyed_claims_ref_is_derived_from_owner_and_key() -> None:
    """Retries share the reference (same owner, same key); another token's same key is unrelated."""
    ref = Claim("shop", "key-1").ref()
    assert REF_PATTERN.fullmatch(ref)
    assert Claim("shop", "key-1").ref() == ref
    assert len({ref, Claim("blog", "key-1").ref(), Claim("shop", "key-2").ref()}) == 3


def test_an_unkeyed_claim_gets_a_new_random_ref_each_time() -> None:
    refs = {Claim("shop").ref() for _ in range(100)}
    assert len(refs) == 100 and all(REF_PATTERN.fullmatch(r) for r in refs)


def test_fingerprints_tell_bytes_from_urls_and_payloads_apart() -> None:
    assert fingerprint("bytes", b"abc") == fingerprint("bytes", b"abc")
    assert len({fingerprint("bytes", b"abc"), fingerprint("url", b"abc"), fingerprint("bytes", b"abd")}) == 3


def test_records_round_trip() -> None:
    upload = KeyedUpload("0" * 32, fingerprint("bytes", b"x"), created=True)
    assert KeyedUpload.from_json(upload.to_json()) == upload
    assert b'"owner": "shop"' in Reference("0" * 32, "shop", "a" * 26, 1.5).to_json()


def test_the_lease_outlasts_two_of_the_slowest_store_calls() -> None:
    assert lease_for(StorageSettings()) == MIN_LEASE_S  # local disk: no call timeouts to outlast
    assert lease_for(StorageSettings(backend="s3", s3=S3Settings(bucket="b"))) == MIN_LEASE_S  # 2 x 2 x 7 s = 28 s
    slow = S3Settings(bucket="b", connect_timeout_s=5.0, read_timeout_s=20.0, max_attempts=3)
    assert lease_for(StorageSettings(backend="s3", s3=slow)) == 2 * 3 * 25.0
