"""S3 store: any S3-compatible endpoint (AWS, MinIO, Ceph, R2...), same key layout as on disk.

Why no temp object + rename, as the disk store does: an S3 PUT is atomic per
object. The new object becomes visible only once its whole body has been
received and stored; until then readers get the previous object (or 404), and a
PUT that fails or is cut off halfway leaves nothing behind. S3 also has no
rename, so a copy-then-delete would only add a window, not close one.

boto3 is blocking, so every call runs in this store's own thread pool, sized
like the connection pool: the event loop never waits on the network, and a slow
bucket fills only these threads, not the default executor that the rest of the
process (asyncio.to_thread) relies on.

Every call is bounded: connect and read timeouts plus a fixed number of attempts
(botocore "standard" retries, which also back off). Any failure other than "no
such object" becomes StorageError, which the HTTP layer answers with
503 + Retry-After, so an S3 outage costs clients seconds, not hung requests.
"Any failure" is wider than botocore's own exception types. Depending on the
version, urllib3's ProtocolError, http.client's IncompleteRead or a socket error
escape its wrapping, and its parsers raise ValueError on a header cut mid-value;
`NETWORK_FAULTS` names them all. And a cut can look like an answer: botocore reads
non-streamed bodies without checking their length, and a connection closed inside
a response head leaves http.client a status with no Content-Length, whose body
then "ends" at the cut. So a read checks the bytes it got against the length S3
announced, a GET's 404 is a miss only when its error document names NoSuchKey,
and a listing or batch delete without framing is refused (`_require_framing`).

No `Expect: 100-continue` on uploads: botocore waits up to 1 s per attempt for the
interim answer from servers that never send one, and a connection cut inside that
interim answer makes its reader loop forever on EOF (a thread lost at 100% CPU,
a request never answered). Our bodies are images of at most a few MB, so sending
them at once costs nothing worth that.

Credentials come only from the standard AWS chain (environment, shared
credentials/config files, instance or task role). The same chain takes
AWS_REQUEST_CHECKSUM_CALCULATION=when_required for S3-compatible servers that
reject the CRC checksums botocore >= 1.36 adds to PUTs by default.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from proxy.config import S3Settings
from proxy.storage import StorageError

if TYPE_CHECKING:  # stubs only (boto3-stubs[s3], botocore-stubs), never imported at run time
    from botocore.awsrequest import AWSResponse
    from botocore.model import OperationModel
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")

MAX_PAGE = 1000  # the most keys one ListObjectsV2 page holds and one DeleteObjects accepts


def pool_size(settings: S3Settings, render_slots: int) -> int:
    """Connections (and threads): as configured, or one per render's store call plus headroom
    for requests answered straight from the store, with a floor of botocore's default 10."""
    return settings.max_pool_connections or max(10, 2 * render_slots + 4)


def _is_missing_object(exc: ClientError, documented: bool) -> bool:
    """A 404 for the object itself. NoSuchBucket is also a 404 but means a broken setup, not a miss.

    A GET's 404 carries an error document (`documented`), which must name NoSuchKey: one cut
    short names nothing, and "maybe missing" is a fault, not a miss. A HEAD's 404 has no body,
    so there the status is all S3 says.
    """
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    code = exc.response.get("Error", {}).get("Code")
    return status == 404 and (code == "NoSuchKey" if documented else code != "NoSuchBucket")


# What the client stack raises when the network fails it: botocore's own types, what escapes them
# from urllib3, http.client and the socket layer (OSError covers ssl.SSLError and timeouts), and
# ValueError, which botocore's parsers raise on a header value cut short (an empty Last-Modified).
NETWORK_FAULTS = (
    BotoCoreError,
    ClientError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
    ValueError,
)


@contextmanager
def _as_storage_error(action: str, where: str) -> Iterator[None]:
    """Turn every failure of the client stack (timeouts, refused, reset or cut connections, 5xx,
    missing credentials, access denied) into the one error type the service knows how to answer."""
    try:
        yield
    except NETWORK_FAULTS as exc:
        raise StorageError(f"s3 {action} {where}: {type(exc).__name__}: {exc}") from exc


def _drop_expect_continue(params: dict[str, Any], **_: Any) -> None:
    """Send bodies without waiting for "100 Continue" (why: the module's docstring)."""
    params["headers"].pop("Expect", None)


# Operations whose 200 body we parse for data: a cut head would make an empty body look like an answer.
FRAMED_OPERATIONS = ("ListObjectsV2", "DeleteObjects")


def _require_framing(http_response: AWSResponse, model: OperationModel, **_: Any) -> None:
    """A 200 whose body is parsed must say how long it is (Content-Length or chunked): S3 always
    does, so a head without either was cut before its end, and its empty body is not an answer."""
    headers = http_response.headers
    if http_response.status_code == 200 and "content-length" not in headers and "transfer-encoding" not in headers:
        raise StorageError(f"s3 {model.name}: the response was cut inside its head (no Content-Length)")


AddressingStyle = Literal["auto", "virtual", "path"]
ADDRESSING_STYLES: tuple[AddressingStyle, ...] = ("auto", "virtual", "path")


def _addressing_style(value: str) -> AddressingStyle:
    """The setting as botocore's type; proxy.config has already refused any other word."""
    for style in ADDRESSING_STYLES:
        if value == style:
            return style
    raise ValueError(f"storage.s3.addressing_style: must be one of {', '.join(ADDRESSING_STYLES)}, got {value!r}")


def _client(settings: S3Settings, connections: int) -> S3Client:
    config = Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # total_max_attempts counts the first try, like max_attempts in an AWS config file;
        # the retries dict's own "max_attempts" would count retries only (one more try).
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        max_pool_connections=connections,
        s3={"addressing_style": _addressing_style(settings.addressing_style)},
    )
    # A session of our own: creating clients from boto3's shared default session is not thread-safe.
    client = boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url or None, config=config)
    client.meta.events.register_last("before-call.s3", _drop_expect_continue)
    for operation in FRAMED_OPERATIONS:
        client.meta.events.register(f"after-call.s3.{operation}", _require_framing)
    return client


class S3Store:
    def __init__(self, settings: S3Settings, render_slots: int, list_page_size: int = MAX_PAGE) -> None:
        """`list_page_size` (at most 1000) is lowered only by tests, to page through a few objects."""
        self.bucket = settings.bucket
        self.prefix = settings.prefix
        self._page_size = list_page_size
        connections = pool_size(settings, render_slots)
        with _as_storage_error("create client for", self.bucket):
            self._client = _client(settings, connections)
        self._executor = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="s3-store")

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # -- blocking implementations, run in the store's threads ---------------

    def _get(self, key: str) -> bytes | None:
        with _as_storage_error("get", self._where(key)):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as exc:
                if _is_missing_object(exc, documented=True):
                    return None
                raise
            with closing(response["Body"]) as body:
                data: bytes = body.read()
        # urllib3 and botocore already refuse a body shorter than its Content-Length; a head cut
        # before that header leaves no length to check against, so a missing one is a fault too.
        announced = response.get("ContentLength")
        if announced != len(data):
            raise StorageError(f"s3 get {self._where(key)}: read {len(data)} bytes of {announced} announced")
        return data

    def _put(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        with _as_storage_error("put", self._where(key)):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
            )

    def _exists(self, key: str) -> bool:
        with _as_storage_error("head", self._where(key)):
            try:
                self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as exc:
                if _is_missing_object(exc, documented=False):
                    return False
                raise
            return True

    def _delete(self, key: str) -> None:
        with _as_storage_error("delete", self._where(key)):
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def _delete_prefix(self, prefix: str) -> int:
        """List page by page and delete each page as it comes, one DeleteObjects per page (a page
        holds at most 1000 keys, that request's limit): memory stays one page whatever the count,
        and deleting keys already listed does not disturb the listing's continuation."""
        deleted = 0
        with _as_storage_error("delete prefix", self._where(prefix)):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": self._page_size}
            )
            for page in pages:
                keys = [item["Key"] for item in page.get("Contents", [])]
                if keys:
                    deleted += self._delete_batch(keys)
        return deleted

    def _list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with _as_storage_error("list", self._where(prefix)):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix, PaginationConfig={"PageSize": self._page_size}
            )
            for page in pages:
                keys += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
        return keys

    def _delete_batch(self, full_keys: list[str]) -> int:
        response = self._client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in full_keys], "Quiet": True}
        )
        errors = response.get("Errors", [])
        if errors:  # DeleteObjects answers 200 even when some keys failed
            first = errors[0]
            raise StorageError(
                f"s3 delete s3://{self.bucket}/{first.get('Key')}: {first.get('Code')} "
                f"{first.get('Message')} ({len(errors)} of {len(full_keys)} keys failed)"
            )
        return len(full_keys)

    def _ping(self) -> None:
        with _as_storage_error("head bucket", f"s3://{self.bucket}"):
            self._client.head_bucket(Bucket=self.bucket)

    # -- async interface ---------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        return await self._run(self._get, key)

    async def put(self, key: str, data: bytes, content_type: str, cache_control: str) -> None:
        await self._run(self._put, key, data, content_type, cache_control)

    async def exists(self, key: str) -> bool:
        return await self._run(self._exists, key)

    async def delete(self, key: str) -> None:
        await self._run(self._delete, key)

    async def list_keys(self, prefix: str) -> list[str]:
        return await self._run(self._list_keys, prefix)

    async def delete_prefix(self, prefix: str) -> int:
        return await self._run(self._delete_prefix, prefix)

    async def ping(self) -> None:
        await self._run(self._ping)

    async def close(self) -> None:
        """Wait (off the loop) for calls in flight, which the timeouts bound, then drop the connections."""
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
        self._client.close()
