"""Download the official PCam splits (Zenodo record 2546921) with progress, resume and MD5 check.

``python -m model_training.cli.download --out data/pcam [--splits train valid test]``"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model_training.data.download import BASE_URL, DownloadError, download


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m model_training.cli.download", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("data/pcam"))
    ap.add_argument("--splits", nargs="+", default=["train", "valid", "test"], choices=["train", "valid", "test"])
    ap.add_argument("--base-url", default=BASE_URL, help="mirror to download from")
    ap.add_argument("--keep-gz", action="store_true", help="keep the .h5.gz files after unpacking")
    args = ap.parse_args(argv)
    try:
        for path in download(args.out, args.splits, args.base_url, args.keep_gz):
            print(path)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
