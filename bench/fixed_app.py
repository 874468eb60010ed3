"""The ceiling for the hit path: a starlette app that answers every GET with ~30 KB from memory.

A cached variant costs the proxy a route match, query validation, two dict
lookups and a Response; this app does only the Response. Served by the same
uvicorn (uvloop + httptools, no access log, no server header), its req/s is
what the stack can do at best on this machine, so proxy hit req/s divided by
this one tells how much our own per-request code costs, independent of the CPU.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

BODY = bytes(range(256)) * 120  # 30,720 bytes: the size of the variant http_bench hits (29.9 KB)


async def fixed(request: Request) -> Response:
    return Response(BODY, media_type="image/webp")


app = Starlette(routes=[Route("/", fixed, methods=["GET"])])
