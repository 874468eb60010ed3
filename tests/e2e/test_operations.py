"""Operability: Prometheus metrics across workers, JSON access logs, request ids, the CLI, shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.servers import Server

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(srv: Server) -> Samples:
    text = httpx.get(srv.url + "/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_count_a_known_sequence_exactly(make_server: Any, corpus: Path, workers: int) -> None:
    srv = make_server(workers=workers)
    photo = (corpus / "photos/orientation_1.jpg").read_bytes()
    before = scrape(srv)
    with srv.client() as c:  # a new connection per request spreads them over workers
        image = c.post("/img", content=photo).json()["id"]
        assert c.post("/img", content=photo).status_code == 200
        assert c.post("/img", content=b"<svg/>").status_code == 415
        bodies = 0
        for _ in range(3):
            with httpx.Client(base_url=srv.url, timeout=60) as fresh:
                bodies += len(fresh.get(f"/img/{image}?w=320&fmt=webp").content)
        assert c.head(f"/img/{image}?w=320&fmt=webp").status_code == 200
        missing = c.get("/img/" + "0" * 32)
        assert missing.status_code == 404
        bodies += len(missing.content)  # the JSON error body counts too
    after = scrape(srv)
    assert delta(before, after, "proxy_http_requests_total", route="/img", method="POST", status="201") == 1
    assert delta(before, after, "proxy_http_requests_total", route="/img", method="POST", status="200") == 1
    assert delta(before, after, "proxy_http_requests_total", route="/img", method="POST", status="415") == 1
    assert delta(before, after, "proxy_http_requests_total", route="/img/{id}", method="GET", status="200") == 3
    assert delta(before, after, "proxy_http_requests_total", route="/img/{id}", method="HEAD", status="200") == 1
    assert delta(before, after, "proxy_http_requests_total", route="/img/{id}", method="GET", status="404") == 1
    assert delta(before, after, "proxy_uploads_total", result="created") == 1
    assert delta(before, after, "proxy_uploads_total", result="existing") == 1
    assert delta(before, after, "proxy_uploads_rejected_total", reason="unsupported_format") == 1
    assert delta(before, after, "proxy_cache_results_total", tier="render") == 1  # one render across workers
    served = sum(delta(before, after, "proxy_cache_results_total", tier=t) for t in ("memory", "store"))
    assert served == 3  # two GETs and the HEAD: from memory, or from the store on the other worker
    assert delta(before, after, "proxy_render_seconds_count", format="webp") == 1
    assert delta(before, after, "proxy_http_response_bytes_total", route="/img/{id}") == bodies
    assert after[("proxy_renders_in_flight", ())] == 0 and after[("proxy_renders_queued", ())] == 0


def access_lines(srv: Server) -> list[dict[str, Any]]:
    lines = []
    for line in srv.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_access_log_is_one_json_line_per_request_with_the_request_id(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    with srv.client() as c:
        image = c.post(
            "/img", content=(corpus / "photos/orientation_2.jpg").read_bytes(), headers={"x-request-id": "upload-42"}
        ).json()["id"]
        hit = c.get(f"/img/{image}?w=200&fmt=jpeg", headers={"x-request-id": "req.abc-123"})
        generated = c.get("/healthz")
        spoofed = c.get("/healthz", headers={"x-request-id": "bad id\twith spaces"})
    assert hit.headers["x-request-id"] == "req.abc-123"
    assert len(generated.headers["x-request-id"]) == 24
    assert spoofed.headers["x-request-id"] != "bad id\twith spaces"
    time.sleep(0.3)  # let the server flush its log
    lines = {line["request_id"]: line for line in access_lines(srv)}
    upload = lines["upload-42"]
    assert upload["method"] == "POST" and upload["path"] == "/img" and upload["status"] == 201
    line = lines["req.abc-123"]
    assert line["method"] == "GET" and line["path"] == f"/img/{image}" and line["query"] == "w=200&fmt=jpeg"
    assert line["status"] == 200 and line["bytes"] == len(hit.content) and line["cache"] == "render"
    assert line["duration_ms"] > 0 and line["client"] == "127.0.0.1" and isinstance(line["ts"], float)
    assert lines[generated.headers["x-request-id"]]["path"] == "/healthz"


def test_access_log_can_be_turned_off(make_server: Any) -> None:
    srv = make_server(logging={"access_log": False})
    httpx.get(srv.url + "/healthz", timeout=10)
    time.sleep(0.2)
    assert access_lines(srv) == []


# --------------------------------------------------------------------------- CLI


def test_cli_upload_warm_purge_against_a_running_server(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    files = [str(corpus / "photos/orientation_3.jpg"), str(corpus / "formats/png_rgba.png")]
    uploaded = srv.cli("upload", "--url", srv.url, *files)
    assert uploaded.returncode == 0, uploaded.stderr
    rows = [line.split() for line in uploaded.stdout.splitlines()]
    assert len(rows) == 2 and all(row[1] == f"{srv.url}/img/{row[0]}" for row in rows)
    ids = [row[0] for row in rows]
    again = srv.cli("upload", "--url", srv.url, files[0])
    assert again.returncode == 0 and "already stored" in again.stdout

    warmed = srv.cli("warm", "--url", srv.url, *ids, "--formats", "webp,jpeg")
    assert warmed.returncode == 0, warmed.stderr
    assert "warmed 16 of 16 variants" in warmed.stdout  # 2 images x 4 presets x 2 formats
    assert "16/16" in warmed.stderr and "#" in warmed.stderr  # the progress bar
    with srv.client() as c:
        assert c.get(f"/img/{ids[0]}?p=small&fmt=webp").headers["x-cache-tier"] == "memory"

    purged = srv.cli("purge", "--url", srv.url, ids[0])
    assert purged.returncode == 0 and f"purged {ids[0]}" in purged.stdout
    with srv.client() as c:
        assert c.get(f"/img/{ids[0]}?p=small&fmt=webp").status_code == 404
    missing = srv.cli("purge", "--url", srv.url, ids[0])
    assert missing.returncode == 1 and "not_found" in missing.stderr


def test_cli_upload_reports_refused_files(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    result = srv.cli("upload", "--url", srv.url, str(corpus / "hostile/svg_onload_xss.svg"))
    assert result.returncode == 1 and "415 unsupported_format" in result.stderr


def test_gc_drops_variants_the_config_no_longer_allows(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "photos/orientation_4.jpg").read_bytes()).json()["id"]
        for query in ("w=320&fmt=webp", "w=640&fmt=webp", "w=640&fmt=avif", "p=thumb&fmt=jpeg"):
            assert c.get(f"/img/{image}?{query}").status_code == 200
    before = set(srv.variant_files(image))
    assert len(before) == 4
    srv.stop()
    srv.config.write_text(
        srv.config.read_text() + "[variants]\nwidths = [160, 320, 480]\nheights = [160, 320]\n"
        'dprs = [1]\nformats = ["webp", "jpeg", "png"]\n'
    )  # 640 wide (even as 320 at dpr 2) and avif go
    dry = srv.cli("gc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would drop 2" in dry.stdout and set(srv.variant_files(image)) == before
    done = srv.cli("gc")
    assert done.returncode == 0 and "kept 2 variant(s), dropped 2" in done.stdout
    assert set(srv.variant_files(image)) == {"320x213-q80.webp", "160x160-cover-q80.jpg"}


# --------------------------------------------------------------------------- shutdown


def test_sigterm_lets_in_flight_renders_finish_and_store(make_server: Any, corpus: Path) -> None:
    srv = make_server()
    with srv.client() as c:
        image = c.post("/img", content=(corpus / "photos/nokia_8.3_5g_gps_9mp.jpg").read_bytes()).json()["id"]
    results: dict[str, Any] = {}

    def slow_request() -> None:
        results["response"] = httpx.get(f"{srv.url}/img/{image}?w=2048&fmt=png", timeout=60)

    thread = threading.Thread(target=slow_request)
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and srv.health()["renders_running"] == 0:
        time.sleep(0.01)
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGTERM)
    thread.join(60)
    assert results["response"].status_code == 200
    assert srv.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after shutting down
    assert "Finished server process" in srv.log()
    assert "2048x878.png" in srv.variant_files(image)
