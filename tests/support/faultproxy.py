"""A fault-injecting TCP proxy on loopback, in front of an S3 endpoint.

The S3 store's failure handling can only be proven on a real network path: the
exceptions botocore, urllib3, http.client and the socket layer raise depend on
where exactly a connection breaks. Stopping the server or black-holing a port
reaches only a few of those places; a body cut a few bytes in (the case that once
answered 500) needs a proxy that knows where a response's head ends and its body
begins.

So the proxy frames both directions of each connection as HTTP/1.1 messages (head,
then a body by Content-Length or chunked encoding) and applies a `Fault` to the
requests whose request line it matches, leaving the others untouched on the same
keep-alive connection. Clients do not pipeline (botocore never does), so the Nth
response on a connection answers the Nth request.

Faults: refuse (nothing listens: ECONNREFUSED), black_hole (the request is swallowed,
nothing ever answers), cut_head / cut_body (the response stops after `at` bytes of its
head or body and the connection closes), cut_request (the request stops after `at`
bytes, e.g. a PUT cut mid-body), latency (the response waits `delay_s` before its first
byte) and reset (an RST, via SO_LINGER 0, once the request head has arrived).
`random_cuts` draws cuts from a seed per request line, so a run is reproducible
however the concurrent requests interleave.
"""

from __future__ import annotations

import random
import re
import socket
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

FaultKind = Literal["refuse", "black_hole", "cut_head", "cut_body", "cut_request", "latency", "reset"]
# The kinds random_cuts draws, each with the range of its cut point: response heads are a few
# hundred bytes; a cut request reaches into a PUT's body.
CUT_RANGES: dict[FaultKind, int] = {"cut_head": 300, "cut_body": 2048, "cut_request": 2048, "reset": 1}
CHUNK = 65536


@dataclass(frozen=True)
class Fault:
    """What happens to each request whose request line (`PUT /bucket/key HTTP/1.1`) `match` finds.

    `at`: bytes let through before a cut (of the response head, the response body or the
    request, by kind); a message shorter than that passes whole. `delay_s`: for latency.
    refuse acts on the listener, not on requests, so it ignores `match`.
    """

    kind: FaultKind
    at: int = 0
    delay_s: float = 0.0
    match: str = ""

    def applies_to(self, request_line: str) -> bool:
        return re.search(self.match, request_line) is not None


Policy = Callable[[str], "Fault | None"]


def random_cuts(seed: int, rate: float) -> Policy:
    """A policy that cuts about `rate` of the requests, each with a kind and a cut point from
    CUT_RANGES drawn from (seed, request line, how often that line was seen): the same seed cuts
    the same requests of the same uploads whatever order they arrive in."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def decide(request_line: str) -> Fault | None:
        with lock:
            attempt = seen[request_line]
            seen[request_line] += 1
        rng = random.Random(f"{seed}/{request_line}/{attempt}")
        if rng.random() >= rate:
            return None
        kind = rng.choice(list(CUT_RANGES))
        return Fault(kind, at=rng.randrange(CUT_RANGES[kind]))

    return decide


# --------------------------------------------------------------------------- HTTP/1.1 framing


@dataclass
class Segment:
    """Consecutive bytes of one message part. `head` is the whole head, on the segment that ends it;
    `final` is False for an interim (1xx) response head; `end` marks the message's last bytes."""

    part: Literal["head", "body"]
    data: bytes
    head: bytes | None = None
    final: bool = True
    end: bool = False


def header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().lower()
    return None


class Framer:
    """Splits one direction of an HTTP/1.1 connection into heads and bodies.

    `bodiless(head)` says whether a message with this head has no body whatever its headers
    (a request without Content-Length; a response to HEAD, a 1xx, 204 or 304). A body with
    neither length nor chunking runs to the end of the connection.
    """

    def __init__(self, bodiless: Callable[[bytes], bool]) -> None:
        self._bodiless = bodiless
        self._head = b""
        self._state = "head"  # head | length | chunk-size | chunk-data | chunk-crlf | trailer | close
        self._remaining = 0
        self._line = b""

    def feed(self, data: bytes) -> Iterator[Segment]:
        while data:
            if self._state == "head":
                segment, data = self._feed_head(data)
            else:
                segment, data = self._feed_body(data)
            yield segment

    def _feed_head(self, data: bytes) -> tuple[Segment, bytes]:
        seen = len(self._head)
        self._head += data
        end = self._head.find(b"\r\n\r\n", max(0, seen - 3))
        if end < 0:
            return Segment("head", data), b""
        used = end + 4 - seen
        head, self._head = self._head[: end + 4], b""
        interim = head.startswith(b"HTTP/") and head[9:10] == b"1"
        if interim or self._bodiless(head):
            return Segment("head", data[:used], head, final=not interim, end=not interim), data[used:]
        if header(head, b"transfer-encoding") == b"chunked":
            self._state = "chunk-size"
        elif (length := header(head, b"content-length")) is not None:
            self._state, self._remaining = "length", int(length)
            if self._remaining == 0:
                self._state = "head"
                return Segment("head", data[:used], head, end=True), data[used:]
        else:
            self._state = "close"
        return Segment("head", data[:used], head), data[used:]

    def _feed_body(self, data: bytes) -> tuple[Segment, bytes]:
        if self._state == "close":
            return Segment("body", data), b""
        if self._state in ("length", "chunk-data"):
            taken = data[: self._remaining]
            self._remaining -= len(taken)
            if self._remaining == 0:
                self._state = "head" if self._state == "length" else "chunk-crlf"
                self._line = b""
            return Segment("body", taken, end=self._state == "head"), data[len(taken) :]
        # chunk-size, chunk-crlf, trailer: line by line
        cut = data.find(b"\n")
        if cut < 0:
            self._line += data
            return Segment("body", data), b""
        line, self._line = (self._line + data[: cut + 1]).strip(), b""
        end = False
        if self._state == "chunk-size":
            self._remaining = int(line.split(b";")[0], 16)
            self._state = "chunk-data" if self._remaining else "trailer"
        elif self._state == "chunk-crlf":
            self._state = "chunk-size"
        elif not line:  # the empty line that ends the trailer section
            self._state, end = "head", True
        return Segment("body", data[: cut + 1], end=end), data[cut + 1 :]


def request_bodiless(head: bytes) -> bool:
    return header(head, b"content-length") is None and header(head, b"transfer-encoding") is None


def request_line(head: bytes) -> str:
    return head.split(b"\r\n", 1)[0].decode("latin-1")


# --------------------------------------------------------------------------- the proxy


def reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN: SO_LINGER on with a zero timeout."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Cut(Exception):
    """The fault ends this connection here."""


class Connection:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy, self.client, self.upstream = proxy, client, upstream
        self.pending: deque[tuple[str, Fault | None]] = deque()  # (request line, fault) awaiting a response
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def run(self, name: str) -> None:
        threads = [
            threading.Thread(target=self._guarded, args=(pump,), name=f"{name}-{pump.__name__}", daemon=True)
            for pump in (self._requests, self._responses)
        ]
        for thread in threads:
            thread.start()

    def _guarded(self, pump: Callable[[], None]) -> None:
        try:
            pump()
        except (OSError, Cut, ValueError):
            pass
        finally:
            self.close()
            self.proxy.forget(self)

    def _requests(self) -> None:
        framer = Framer(request_bodiless)
        fault, sent, swallowing = None, 0, False
        while data := self.client.recv(CHUNK):
            for segment in framer.feed(data):
                if swallowing:
                    continue
                if segment.part == "head":
                    if segment.head is None:
                        continue  # forward the head only once it is whole and a fault was chosen
                    line = request_line(segment.head)
                    fault = self.proxy.fault_for(line)
                    self.pending.append((line, fault))
                    if fault is not None and fault.kind == "reset":
                        self.proxy.count(fault)
                        reset(self.client)
                        raise Cut
                    if fault is not None and fault.kind == "black_hole":
                        self.proxy.count(fault)
                        swallowing = True  # hold the connection open, answer nothing, until the client leaves
                        continue
                    out, sent = segment.head, 0
                else:
                    out = segment.data
                if fault is not None and fault.kind == "cut_request" and sent + len(out) > fault.at:
                    self.upstream.sendall(out[: fault.at - sent])
                    self.proxy.count(fault)
                    raise Cut
                self.upstream.sendall(out)
                sent += len(out)

    def _responses(self) -> None:
        framer = Framer(self._response_bodiless)
        fault: Fault | None = None
        head_sent = body_sent = 0
        while data := self.upstream.recv(CHUNK):
            for segment in framer.feed(data):
                if head_sent == 0 and body_sent == 0 and segment.part == "head":
                    fault = self.pending[0][1] if self.pending else None
                    if fault is not None and fault.kind == "latency":
                        self.proxy.count(fault)
                        time.sleep(fault.delay_s)
                sent = head_sent if segment.part == "head" else body_sent
                if fault is not None and fault.kind == f"cut_{segment.part}" and sent + len(segment.data) > fault.at:
                    self.client.sendall(segment.data[: fault.at - sent])
                    self.proxy.count(fault)
                    raise Cut
                self.client.sendall(segment.data)
                if segment.part == "head":
                    head_sent += len(segment.data)
                else:
                    body_sent += len(segment.data)
                if segment.end:
                    if self.pending:
                        self.pending.popleft()
                    fault, head_sent, body_sent = None, 0, 0

    def _response_bodiless(self, head: bytes) -> bool:
        status = head[9:12]
        asked_head = bool(self.pending) and self.pending[0][0].startswith("HEAD ")
        return asked_head or status in (b"204", b"304")


class FaultProxy:
    """Listens on a loopback port and forwards every connection to `upstream` ("http://host:port"),
    with the fault `inject` set (none at first). Use it as a context manager."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.removeprefix("http://").rstrip("/").partition(":")
        self._upstream = (host, int(port))
        self._policy: Policy | None = None
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self.applied: Counter[FaultKind] = Counter()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self.port = self._listen(0)
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self, port: int) -> int:
        listener = socket.create_server(("127.0.0.1", port), backlog=128)
        listener.settimeout(0.05)
        self._listener = listener
        return int(listener.getsockname()[1])

    # -- what to do

    def inject(self, fault: Fault | Policy) -> None:
        """From now on apply `fault` (or a policy: request line -> Fault or None) to new requests.
        refuse closes the listener and drops every open connection, like a server gone away."""
        if isinstance(fault, Fault) and fault.kind == "refuse":
            with self._lock:
                self._policy = None
            self._close_all()
            self.count(fault)
            return
        with self._lock:
            self._policy = (
                fault if not isinstance(fault, Fault) else (lambda line: fault if fault.applies_to(line) else None)
            )

    def heal(self) -> None:
        """Forward everything untouched again (listening again after refuse, on the same port)."""
        with self._lock:
            self._policy = None
            if self._listener is None:
                self._listen(self.port)

    def fault_for(self, line: str) -> Fault | None:
        with self._lock:
            policy = self._policy
        return policy(line) if policy is not None else None

    def count(self, fault: Fault) -> None:
        with self._lock:
            self.applied[fault.kind] += 1

    def forget(self, connection: Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    # -- plumbing

    def _accept(self) -> None:
        served = 0
        while not self._stopping.is_set():
            with self._lock:
                listener = self._listener
            if listener is None:
                time.sleep(0.02)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                reset(client)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            served += 1
            connection = Connection(self, client, upstream)
            with self._lock:
                self._connections.add(connection)
            connection.run(f"fault-proxy-{served}")

    def _close_all(self) -> None:
        """Stop listening and close every open connection (refuse, stop)."""
        with self._lock:
            listener, self._listener = self._listener, None
            connections = list(self._connections)
        if listener is not None:
            listener.close()
        for connection in connections:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._close_all()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
