"""Subprocesses that serve on a loopback port (the service, moto, nginx, the benchmarks' peers):
a free port, starting a command and waiting until it answers, and stopping it with its children.

One helper for the tests and for bench/ alike, so that every server anything here starts is bound
to 127.0.0.1, polled the same way, and stopped the same way, children included (uvicorn --workers,
thumbor --processes and nginx fork; a child left behind would hold its port and its memory).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

PROC = Path("/proc")


def free_port() -> int:
    """A port free on 127.0.0.1 right now, for a server about to be started."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time since boot) of every process, from /proc (psutil is not a dependency)."""
    table: dict[int, tuple[int, str]] = {}
    if not PROC.is_dir():
        return table
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def _tree(root: int) -> dict[int, str]:
    """`root` and every process below it, each with its start time (which tells a reused pid apart)."""
    table = _process_table()
    tree = {root: table[root][1]} if root in table else {}
    frontier = [root]
    while frontier:
        frontier = [pid for pid, (ppid, _) in table.items() if ppid in frontier]
        tree.update({pid: table[pid][1] for pid in frontier})
    return tree


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1:`port` (or on every address), from /proc/net/tcp{,6}."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}", f"{'0' * 32}:{port:04X}"}
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(PROC, "net", table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[1] in wanted and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def listens_on(root: int, port: int) -> bool:
    """Whether `root` or a process below it holds the socket listening on `port`.

    A port picked free can be taken by another process before the server binds it (pytest-xdist
    runs several suites' servers at once); that server would then answer our readiness poll.
    Without /proc (not Linux) nothing can be checked, and an answer is taken as ours."""
    if not PROC.is_dir():
        return True
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    for pid in _tree(root):
        try:
            fds = list(os.scandir(PROC / str(pid) / "fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd.path) in inodes:
                    return True
            except OSError:
                continue
    return False


def descendants(root: int) -> list[int]:
    """`root` and every process below it (for summing a server's memory over its workers)."""
    return list(_tree(root)) or [root]


def stop_process(proc: subprocess.Popen[Any] | None, grace_s: float = 10) -> None:
    """SIGTERM, wait up to `grace_s` for a clean exit (servers finish in-flight work), then SIGKILL.

    Children that outlive their parent (a worker the supervisor did not reap) are killed by pid,
    and only while that pid is still the process that was started: a pid the system has handed
    to another process since is left alone.
    """
    if proc is None or proc.poll() is not None:
        return
    children = {pid: started for pid, started in _tree(proc.pid).items() if pid != proc.pid}
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    table = _process_table()
    for pid, started in children.items():
        if pid in table and table[pid][1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class PortTaken(RuntimeError):
    """Another process listens on the port a server was about to bind."""


@dataclass
class HttpProcess:
    """A command serving HTTP on 127.0.0.1:`port`: started, polled until ready, stopped with its children.

    The port is picked once, so stop() then start() comes back on the same address (a client
    configured with it sees an outage and a recovery); only a first start that finds its port
    taken by another process picks a new one. Ready means a 200 on `ready_path`, or, with
    `ready_path=None`, an accepted connection (for a cache whose every request would be a cache
    entry), from a socket this process (or a child) holds. Output goes to `log`, appended across
    restarts. Use it as a context manager to have it stopped whatever happens, also when it
    fails to start.
    """

    name: str
    command: Callable[[int], list[str]]  # the command line, given the port to listen on
    log: Path
    ready_path: str | None = "/healthz"
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # on top of this process's environment
    stop_grace_s: float = 15.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    started_once: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> HttpProcess:
        for _ in range(3):
            try:
                self._start(timeout)
            except PortTaken:
                self.stop()
                if self.started_once:
                    raise  # a restart must come back on its address
                self.port = free_port()
                continue
            self.started_once = True
            return self
        raise RuntimeError(f"{self.name}: three free ports in a row were taken by other processes")

    def _start(self, timeout: float) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(self.port),
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=os.environ | dict(self.env),
            )
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                if _listening_inodes(self.port):
                    raise PortTaken(self.port)
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            if self._ready() and listens_on(self.proc.pid, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer on {self.url} within {timeout:g} s:\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            if self.ready_path is None:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            return httpx.get(self.url + self.ready_path, timeout=1).status_code == 200
        except (OSError, httpx.TransportError):
            return False

    def stop(self) -> None:
        stop_process(self.proc, self.stop_grace_s)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> HttpProcess:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
