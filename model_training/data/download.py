"""Download the official PCam splits (Zenodo record 2546921) with progress, resume and MD5 check.

``python -m model_training.cli.download --out data/pcam [--splits train valid test]``
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

BASE_URL = "https://zenodo.org/records/2546921/files"
# MD5 sums as listed by the Zenodo record. (The PCam GitHub README pairs the valid and test checksums the
# other way round; the files served by Zenodo match the pairing below.)
MD5 = {
    "camelyonpatch_level_2_split_train_x.h5.gz": "1571f514728f59376b705fc836ff4b63",
    "camelyonpatch_level_2_split_train_y.h5.gz": "35c2d7259d906cfc8143347bb8e05be7",
    "camelyonpatch_level_2_split_valid_x.h5.gz": "d5b63470df7cfa627aeec8b9dc0c066e",
    "camelyonpatch_level_2_split_valid_y.h5.gz": "2b85f58b927af9964a4c15b8f7e8f179",
    "camelyonpatch_level_2_split_test_x.h5.gz": "d8c2d60d490dbd479f8199bdfa0cf6ec",
    "camelyonpatch_level_2_split_test_y.h5.gz": "60a7035772fbdb7f34eb86d4420cf66a",
}
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download that failed or whose checksum does not match."""


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, md5: str | None = None, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` with an HTTP Range request."""
    from tqdm import tqdm

    if dest.exists() and (md5 is None or md5sum(dest) == md5):
        return dest
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the part file is complete
            resp = None
        else:
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError) as exc:
        raise DownloadError(f"{url}: cannot connect ({getattr(exc, 'reason', exc)}); check the network") from exc
    if resp is not None:
        with resp:
            if have and resp.status != 206:  # server ignored Range: start over
                have = 0
            total = resp.length + have if resp.length is not None else None
            with open(part, "ab" if have else "wb") as fh, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                                                 desc=dest.name, disable=not progress,
                                                                 file=sys.stderr) as bar:
                try:
                    while chunk := resp.read(CHUNK):
                        fh.write(chunk)
                        bar.update(len(chunk))
                except (OSError, http.client.HTTPException) as exc:
                    raise DownloadError(f"{dest.name}: transfer broke off ({exc}); run again to resume") from exc
        got = part.stat().st_size
        if total is not None and got < total:
            raise DownloadError(f"{dest.name}: transfer broke off at {got} of {total} bytes; run again to resume")
    if md5 is not None:
        got = md5sum(part)
        if got != md5:
            part.unlink()
            raise DownloadError(f"{dest.name}: MD5 {got} does not match the published {md5}; the partial file "
                                "was removed, run the command again")
    part.replace(dest)
    return dest


def gunzip(src: Path, dest: Path) -> Path:
    """Decompress ``src`` (.gz) to ``dest`` via a temporary file, so an interrupted run leaves no half file."""
    tmp = dest.with_name(dest.name + ".tmp")
    with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, CHUNK)
    tmp.replace(dest)
    return dest


def download(out: Path, splits: list[str], base_url: str = BASE_URL, keep_gz: bool = False,
             md5: dict[str, str] | None = None, progress: bool = True) -> list[Path]:
    """Fetch, verify and unpack ``camelyonpatch_level_2_split_<split>_{x,y}.h5`` into ``out``."""
    md5 = MD5 if md5 is None else md5
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for split in splits:
        for part in ("x", "y"):
            name = f"camelyonpatch_level_2_split_{split}_{part}.h5"
            h5 = out / name
            if h5.exists():
                done.append(h5)
                continue
            gz = fetch(f"{base_url}/{name}.gz", out / f"{name}.gz", md5.get(f"{name}.gz"), progress)
            done.append(gunzip(gz, h5))
            if not keep_gz:
                gz.unlink()
    return done
