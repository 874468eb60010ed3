"""tests/support/processes.py: a server the tests start never mistakes another process for itself.

Under pytest-xdist several suites start servers at once, so a port picked free can be bound by
someone else before our server binds it; that process would then answer our readiness poll and
the test would talk to the wrong server (seen once in CI: an import test reached a server without
its fetch config). HttpProcess only counts as ready an answer from a socket its own process tree
holds, and a first start whose port is taken picks another.
"""

from __future__ import annotations

import http.server
import sys
import threading
from pathlib import Path

import httpx

from support.processes import HttpProcess, listens_on


class _Foreign(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"foreign")

    def log_message(self, *_: object) -> None:
        pass


def test_a_port_taken_by_another_process_is_not_mistaken_for_ours(tmp_path: Path) -> None:
    foreign = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Foreign)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    taken = foreign.server_address[1]
    (tmp_path / "ours.txt").write_text("ours", encoding="utf-8")
    process = HttpProcess(
        "http.server",
        lambda port: [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "-d", str(tmp_path), str(port)],
        tmp_path / "server.log",
        ready_path="/ours.txt",
        port=taken,
    )
    try:
        with process:
            assert process.port != taken
            assert process.proc is not None and listens_on(process.proc.pid, process.port)
            assert httpx.get(process.url + "/ours.txt", timeout=5).text == "ours"
            assert not listens_on(process.proc.pid, taken)
    finally:
        foreign.shutdown()
        foreign.server_close()
