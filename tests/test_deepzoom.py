"""The deep-zoom tile routes on the real Aperio slide: what an issued id serves, and that everything else (a
made-up id, a slide outside the allowed folder, ``..`` in any part, a level or tile outside the pyramid) is a
plain 404 with nothing else in it."""
from __future__ import annotations

import asyncio
import io
import shutil
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
from openslide import OpenSlide
from openslide.deepzoom import DeepZoomGenerator
from PIL import Image
from starlette.applications import Starlette
from real_inputs import SVS

from app.inputs import deepzoom
from app.inputs.deepzoom_routes import ROUTES


@dataclass
class Reply:
    status_code: int
    headers: dict
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class Client:
    """GETs straight into the routes' ASGI app with the path as uvicorn passes it: percent-decoded, never
    normalised (an HTTP client would resolve ``..`` itself before sending, hiding what the server does)."""

    def __init__(self, routes):
        self.app = Starlette(routes=routes)

    def get(self, url: str) -> Reply:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
                 "path": unquote(url), "raw_path": url.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        asyncio.run(self.app(scope, receive, send))
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Reply(start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body)


@pytest.fixture
def served(slides_root, tmp_path):
    """A client of the routes, the allowed folder with a copy of the slide, and an id issued for it."""
    folder = tmp_path / "allowed"
    folder.mkdir()
    shutil.copy(slides_root / SVS, folder / SVS)
    sid = deepzoom.issue(folder / SVS, folder)
    return Client(ROUTES), folder, sid


def refused(response) -> bool:
    return response.status_code == 404 and response.text == "Not Found" and \
        response.headers["content-type"].startswith("text/plain")


def test_an_issued_id_serves_the_dzi_and_every_tile_at_its_deep_zoom_size(served):
    client, folder, sid = served
    dzi = client.get(f"/dz/{sid}/slide.dzi")
    assert dzi.status_code == 200 and 'Width="2220"' in dzi.text and 'Height="2967"' in dzi.text
    reference = DeepZoomGenerator(OpenSlide(str(folder / SVS)), deepzoom.TILE_SIZE, deepzoom.OVERLAP)
    for level in range(reference.level_count):  # coarse levels come from the base image, fine ones from OpenSlide
        cols, rows = reference.level_tiles[level]
        for col, row in {(0, 0), (cols - 1, rows - 1), (cols // 2, rows // 2)}:
            r = client.get(f"/dz/{sid}/slide_files/{level}/{col}_{row}.jpeg")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            assert "max-age" in r.headers["cache-control"]
            assert Image.open(io.BytesIO(r.content)).size == reference.get_tile_dimensions(level, (col, row))
    full = Image.open(io.BytesIO(client.get(f"/dz/{sid}/slide_files/{reference.level_count - 1}/1_1.jpeg").content))
    assert full.size == (254 + 2, 254 + 2)  # a full-resolution tile with its overlap on both sides


def test_a_coarse_level_cut_from_the_base_image_matches_openslides_own_tile(served):
    client, folder, sid = served
    reference = DeepZoomGenerator(OpenSlide(str(folder / SVS)), deepzoom.TILE_SIZE, deepzoom.OVERLAP)
    level = 9  # 139×186 px: the whole slide in one tile
    ours = Image.open(io.BytesIO(client.get(f"/dz/{sid}/slide_files/{level}/0_0.jpeg").content)).convert("L")
    theirs = reference.get_tile(level, (0, 0)).convert("L")
    diff = sum(abs(a - b) for a, b in zip(ours.getdata(), theirs.getdata())) / (ours.width * ours.height)
    assert diff < 6  # the same picture, up to resampling and JPEG


def test_anything_not_issued_is_a_plain_404(served, tmp_path):
    client, folder, sid = served
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(folder / SVS, outside / SVS)
    with pytest.raises(deepzoom.NotServed):  # a slide outside the folder it is offered from gets no id
        deepzoom.issue(outside / SVS, folder)
    with pytest.raises(deepzoom.NotServed):
        deepzoom.issue(folder / ".." / "outside" / SVS, folder)
    made_up = "A" * len(sid)
    urls = [
        f"/dz/{made_up}/slide.dzi", f"/dz/{made_up}/slide_files/0/0_0.jpeg", f"/dz/{sid[:-1]}/slide.dzi",
        f"/dz/{sid}/../{sid}/slide.dzi", f"/dz/{sid}/slide_files/../0/0_0.jpeg", f"/dz/{sid}/slide_files/0/../0_0.jpeg",
        f"/dz/{sid}/slide_files/%2e%2e/0_0.jpeg", f"/dz/{sid}/slide_files/0/..%2f0_0.jpeg",
        f"/dz/..%2f..%2f{SVS}/slide.dzi", f"/dz/{folder / SVS}/slide.dzi", f"/dz/{SVS}/slide.dzi",
        f"/dz/{sid}/slide_files/13/0_0.jpeg", f"/dz/{sid}/slide_files/99/0_0.jpeg",
        f"/dz/{sid}/slide_files/-1/0_0.jpeg", f"/dz/{sid}/slide_files/1.0/0_0.jpeg",
        f"/dz/{sid}/slide_files/abc/0_0.jpeg", f"/dz/{sid}/slide_files/12/9_0.jpeg",
        f"/dz/{sid}/slide_files/12/0_12.jpeg", f"/dz/{sid}/slide_files/12/-1_0.jpeg",
        f"/dz/{sid}/slide_files/12/0_0.png", f"/dz/{sid}/slide_files/12/0_0.jpeg.", f"/dz/{sid}/overlay/heat.png",
        f"/dz/{sid}/overlay/../../slide.dzi", "/dz/static/../deepzoom.py", "/dz/static/LICENSE.txt", "/dz/", "/dz",
    ]
    for url in urls:
        r = client.get(url)
        assert refused(r), (url, r.status_code, r.text[:80])
    assert client.get(f"/dz/{sid}/slide_files/12/8_11.jpeg").status_code == 200  # the last tile is served

    # the slide replaced by a link out of the folder after its id was issued: refused from then on
    (folder / SVS).unlink()
    (folder / SVS).symlink_to(outside / SVS)
    deepzoom.clear_tiles()
    assert refused(client.get(f"/dz/{sid}/slide.dzi"))
    assert refused(client.get(f"/dz/{sid}/slide_files/12/0_0.jpeg"))


def test_overlays_are_served_only_by_the_names_attached(served):
    client, _, sid = served
    deepzoom.attach(sid, "heat-0123abcd", b"\x89PNG fake")
    r = client.get(f"/dz/{sid}/overlay/heat-0123abcd.png")
    assert r.status_code == 200 and r.content == b"\x89PNG fake" and r.headers["content-type"] == "image/png"
    assert refused(client.get(f"/dz/{sid}/overlay/heat-0123abcd.jpeg"))
    assert refused(client.get(f"/dz/{'B' * len(sid)}/overlay/heat-0123abcd.png"))
    with pytest.raises(deepzoom.NotServed):
        deepzoom.attach("B" * len(sid), "heat", b"")


def test_the_tile_cache_stays_within_its_byte_budget(served, monkeypatch):
    client, _, sid = served
    deepzoom.clear_tiles()
    monkeypatch.setattr(deepzoom, "TILE_CACHE_BYTES", 40_000)
    for col in range(9):
        for row in range(4):
            assert client.get(f"/dz/{sid}/slide_files/12/{col}_{row}.jpeg").status_code == 200
    assert 0 < deepzoom._tile_bytes <= 40_000 and len(deepzoom._tiles) < 36
    deepzoom.clear_tiles()
