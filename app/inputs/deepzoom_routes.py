"""HTTP routes for the Slide page's viewer, on the app's own port (``st.App(..., routes=ROUTES)``).

``/dz/{id}/slide.dzi`` and ``/dz/{id}/slide_files/{level}/{col}_{row}.jpeg`` (the Deep Zoom layout
OpenSeadragon reads), ``/dz/{id}/overlay/{name}.png`` (heat map, tissue outline) and
``/dz/static/openseadragon.min.js`` (the vendored viewer library; sites are offline, so no CDN). Every part of a
path is matched whole against a strict pattern before anything is looked up, and whatever is not served (a
made-up id, a slide outside its folder, ``..``, a level or tile outside the pyramid) is a plain 404.
"""
from __future__ import annotations

import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.inputs import deepzoom

PREFIX = "/dz"
VENDOR = Path(__file__).resolve().parent / "viewer" / "vendor" / "openseadragon"
STATIC = {"openseadragon.min.js": ("openseadragon.min.js", "text/javascript; charset=utf-8")}
LEVEL_RE = re.compile(r"\d{1,3}")
TILE_RE = re.compile(r"(\d{1,7})_(\d{1,7})\.jpeg")
OVERLAY_RE = re.compile(r"[a-z0-9-]{1,64}\.png")
# Tiles of an id never change (a replaced file is a new slide and a new id): the browser keeps them an hour.
TILE_CACHE = "private, max-age=3600, immutable"
_static: dict[str, bytes] = {}


def _missing() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def _dzi(request: Request) -> Response:
    try:
        body = deepzoom.dzi(request.path_params["sid"])
    except deepzoom.NotServed:
        return _missing()
    return Response(body, media_type="application/xml", headers={"Cache-Control": TILE_CACHE})


def _tile(request: Request) -> Response:
    level, name = request.path_params["level"], request.path_params["name"]
    match = TILE_RE.fullmatch(name)
    if not LEVEL_RE.fullmatch(level) or match is None:
        return _missing()
    try:
        body = deepzoom.tile(request.path_params["sid"], int(level), int(match[1]), int(match[2]))
    except deepzoom.NotServed:
        return _missing()
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": TILE_CACHE})


def _overlay(request: Request) -> Response:
    name = request.path_params["name"]
    if not OVERLAY_RE.fullmatch(name):
        return _missing()
    try:
        body = deepzoom.overlay(request.path_params["sid"], name.removesuffix(".png"))
    except deepzoom.NotServed:
        return _missing()
    # an overlay's URL carries a digest of its content, so a new heat map is a new URL
    return Response(body, media_type="image/png", headers={"Cache-Control": TILE_CACHE})


def _vendor(request: Request) -> Response:
    known = STATIC.get(request.path_params["name"])
    if known is None:
        return _missing()
    body = _static.get(known[0])
    if body is None:
        body = _static[known[0]] = (VENDOR / known[0]).read_bytes()
    return Response(body, media_type=known[1], headers={"Cache-Control": "public, max-age=86400"})


def _anything_else(_request: Request) -> Response:
    return _missing()


# Plain (synchronous) endpoints: Starlette runs them in its thread pool, so slide reads never block the server's
# event loop. The catch-all keeps any other /dz path from reaching Streamlit's page fallback (a 200 index page).
ROUTES = [
    Route(f"{PREFIX}/static/{{name}}", _vendor),
    Route(f"{PREFIX}/{{sid}}/slide.dzi", _dzi),
    Route(f"{PREFIX}/{{sid}}/slide_files/{{level}}/{{name}}", _tile),
    Route(f"{PREFIX}/{{sid}}/overlay/{{name}}", _overlay),
    Route(f"{PREFIX}/{{rest:path}}", _anything_else, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    Route(PREFIX, _anything_else),
]
