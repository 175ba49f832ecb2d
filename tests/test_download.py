"""The PCam downloader against a local HTTP server (127.0.0.1) with Range support."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from model_training.data.download import DownloadError, download, fetch
from model_training.data.sources import open_source


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with single-range support, counting bytes sent, optionally cutting off once."""

    cut_after: int | None = None
    sent: list[int] = []

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if type(self).cut_after is not None:  # simulate a dropped connection mid-file
            body, type(self).cut_after = body[:type(self).cut_after], None
        # Counted before writing: the client may finish reading and the test assert before this thread resumes.
        type(self).sent.append(len(body))
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "srv"
    root.mkdir()
    handler = type("H", (RangeHandler,), {"sent": [], "cut_after": None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: handler(*a, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()


def _make_pcam(root: Path, n: int = 40) -> dict[str, str]:
    rng = np.random.default_rng(0)
    md5 = {}
    for part, arr in (("x", rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8)),
                      ("y", rng.integers(0, 2, (n, 1, 1, 1), dtype=np.uint8))):
        h5 = root / f"camelyonpatch_level_2_split_valid_{part}.h5"
        with h5py.File(h5, "w") as f:
            f.create_dataset(part, data=arr)
        gz = h5.with_name(h5.name + ".gz")
        gz.write_bytes(gzip.compress(h5.read_bytes(), compresslevel=1))
        h5.unlink()
        md5[gz.name] = hashlib.md5(gz.read_bytes()).hexdigest()
    return md5


def test_download_verifies_and_unpacks(server, tmp_path):
    root, url, _ = server
    md5 = _make_pcam(root)
    out = tmp_path / "pcam"
    files = download(out, ["valid"], base_url=url, md5=md5, progress=False)
    assert [f.name for f in files] == ["camelyonpatch_level_2_split_valid_x.h5", "camelyonpatch_level_2_split_valid_y.h5"]
    src = open_source(out, "valid")
    assert len(src) == 40 and src.get(3).shape == (96, 96, 3)
    assert not list(out.glob("*.gz")) and not list(out.glob("*.part"))


def test_resume_fetches_only_the_rest(server, tmp_path):
    root, url, handler = server
    md5 = _make_pcam(root)
    name = "camelyonpatch_level_2_split_valid_x.h5.gz"
    size = (root / name).stat().st_size
    handler.cut_after = size // 3
    dest = tmp_path / name
    with pytest.raises(DownloadError):  # truncated transfer: the checksum catches it, keeping the part
        fetch(f"{url}/{name}", dest, None, progress=False)
    part = dest.with_name(name + ".part")
    assert part.stat().st_size == size // 3
    fetch(f"{url}/{name}", dest, md5[name], progress=False)
    assert handler.sent == [size // 3, size - size // 3], "the second request must ask only for the rest"
    assert hashlib.md5(dest.read_bytes()).hexdigest() == md5[name]


def test_bad_checksum_is_reported_and_removed(server, tmp_path):
    root, url, _ = server
    _make_pcam(root)
    name = "camelyonpatch_level_2_split_valid_y.h5.gz"
    with pytest.raises(DownloadError, match="MD5"):
        fetch(f"{url}/{name}", tmp_path / name, "0" * 32, progress=False)
    assert not (tmp_path / (name + ".part")).exists()


def test_unreachable_server_is_a_clear_error(tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404|cannot connect"):
        fetch("http://127.0.0.1:9/none.gz", tmp_path / "none.gz", progress=False, timeout=2)
