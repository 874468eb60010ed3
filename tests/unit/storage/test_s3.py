"""S3Store's exception mapping: every way the client stack reports a network fault is StorageError.

The faults themselves are made for real in tests/e2e/test_s3_faults.py (through a proxy, on moto
and radosgw); this lists the exception types, including those no loopback fault produces with
the botocore of the day (TLS errors, checksum mismatches, urllib3's own errors escaping).
"""

from __future__ import annotations

import http.client
import ssl

import pytest
import urllib3.exceptions
from botocore.exceptions import (
    ConnectionClosedError,
    EndpointConnectionError,
    FlexibleChecksumError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from proxy.storage import StorageError
from proxy.storage.s3 import _as_storage_error

URL = "http://127.0.0.1:9/bucket/key"

FAULTS = [
    EndpointConnectionError(endpoint_url=URL),
    ConnectionClosedError(endpoint_url=URL),
    ReadTimeoutError(endpoint_url=URL),
    ResponseStreamingError(error="connection broken"),
    IncompleteReadError(actual_bytes=5, expected_bytes=5000),
    FlexibleChecksumError(error_msg="crc32 mismatch"),
    urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead(5 bytes read, 4995 more expected)"),
    urllib3.exceptions.ReadTimeoutError(None, URL, "read timed out"),  # type: ignore[arg-type]
    http.client.IncompleteRead(b"<?xml", 300),
    http.client.RemoteDisconnected("Remote end closed connection without response"),
    ConnectionResetError(104, "Connection reset by peer"),
    BrokenPipeError(32, "Broken pipe"),
    TimeoutError("timed out"),
    ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]"),
    ValueError('Invalid timestamp "": String does not contain a date'),  # a Last-Modified cut short
]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda exc: type(exc).__name__)
def test_every_network_fault_becomes_a_storage_error_naming_it(fault: Exception) -> None:
    with pytest.raises(StorageError, match=rf"^s3 get s3://b/k: {type(fault).__name__}: ") as raised:
        with _as_storage_error("get", "s3://b/k"):
            raise fault
    assert raised.value.__cause__ is fault  # the original stays attached for the log


def test_a_programming_error_is_not_disguised_as_an_outage() -> None:
    """A TypeError or KeyError in our own code must stay a bug (a 500 and a traceback), not a 503."""
    with pytest.raises(KeyError):
        with _as_storage_error("get", "s3://b/k"):
            raise KeyError("Body")
