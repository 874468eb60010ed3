"""proxy.http.observe.RouteTemplates: metric labels come from the app's own routes, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.responses import Response
from starlette.routing import Mount, Route

from proxy.app import create_app
from proxy.config import parse_settings
from proxy.http.observe import RouteTemplates

IMAGE = "0123456789abcdef0123456789abcdef"


def test_every_route_of_the_app_is_labelled_by_its_template(tmp_path: Path) -> None:
    app = create_app(parse_settings({}, tmp_path))
    route_of = RouteTemplates(app.routes)
    for route in app.routes:
        concrete = re.sub(r"\{[^}]+\}", "x", route.path)  # type: ignore[attr-defined]
        assert route_of(concrete) == route.path, concrete  # type: ignore[attr-defined]
    assert route_of(f"/img/{IMAGE}") == "/img/{id}"
    assert route_of(f"/img/{IMAGE}/meta") == "/img/{id}/meta"
    assert route_of("/static/demo.js") == "/static/{name}"
    for junk in ("/nope", f"/img/{IMAGE}/other", "/img/a/b/meta", "/healthz/x", "/img/", "//img", ""):
        assert route_of(junk) == "other", junk


def test_a_new_route_or_mount_needs_no_second_edit() -> None:
    async def endpoint(request: object) -> Response:
        return Response()

    route_of = RouteTemplates([Route("/a/{n:int}", endpoint), Mount("/files", routes=[])])
    assert route_of("/a/12") == "/a/{n}"
    assert route_of("/a/twelve") == "other"  # the convertor's own regex decides, as in the router
    assert route_of("/files/deep/path.txt") == "/files/{path}"
