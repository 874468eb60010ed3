"""proxy.http.answer.WholeImage skips starlette's Response.__init__ on the hit path; over ASGI it
must send exactly what a plain Response with the same status, headers and body sends. This is
the test that fails on a starlette whose Response works differently (pyproject.toml pins it)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from proxy.http.answer import WholeImage, encoded_block, header_block

Message = dict[str, Any]


def sent(app: Response) -> list[Message]:
    """Every ASGI message the response sends, called as the ASGI app it is."""
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/img/x",
        "raw_path": b"/img/x",
        "query_string": b"",
        "headers": [],
    }
    asyncio.run(app(scope, receive, send))
    return messages


def test_whole_image_sends_what_a_plain_response_sends() -> None:
    body = bytes(range(256)) * 117
    block = header_block("image/webp", '"0f1e2d3c"', 1_700_000_000, "Accept", "memory", (400, 267))
    whole = sent(WholeImage(body, encoded_block(block, len(body))))
    plain = sent(Response(body, status_code=200, headers=dict(block)))
    assert whole == plain
    start, content = plain
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert start["headers"] == [(n.encode(), v.encode()) for n, v in block] + [(b"content-length", b"29952")]
    assert content["type"] == "http.response.body" and content["body"] == body
