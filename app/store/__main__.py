"""``python -m app.store``: migrate the review store, import an old audit CSV, add a batch run's scored slides
(cases), export the reviews or the slide-level sign-outs."""
from __future__ import annotations

import argparse
import sys

import pandas as pd

from app.store import db
from app.store.cases import add_batch
from app.store.export import export_csv
from app.store.importer import import_audit
from app.store.items import StoreError
from app.store.queries import reviews_frame
from app.store.service import open_store
from app.store.signout_export import signout_history, signouts_csv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.store", description="The PathReview review store "
                                 f"(${db.DB_ENV}, default a SQLite file ./{db.DEFAULT_FILE}).")
    ap.add_argument("--db", help=f"SQLAlchemy URL of the store (default ${db.DB_ENV} or ./{db.DEFAULT_FILE})")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the store's tables")
    imp = sub.add_parser("import-audit", help="import an audit CSV of earlier versions (rows imported before "
                                              "are skipped)")
    imp.add_argument("file")
    cas = sub.add_parser("add-cases", help="add the slides of a batch run (its folder with cases.csv) to the "
                                           "Cases worklist")
    cas.add_argument("folder")
    cas.add_argument("--truth", help="CSV with slide and truth (1: metastasis, 0: none), where known")
    exp = sub.add_parser("export", help="write the current reviews as CSV")
    exp.add_argument("--out", default="-", help="output file (default: standard output)")
    exp.add_argument("--all", action="store_true", help="include superseded reviews")
    sig = sub.add_parser("export-signouts", help="write every slide-level sign-out, with its case, as CSV")
    sig.add_argument("--out", default="-", help="output file (default: standard output)")
    args = ap.parse_args(argv)

    status = open_store(args.db)
    if not status.ok:
        print(status.message, file=sys.stderr)
        return 2
    if args.command == "migrate":
        print(f"The review store at {status.url} is up to date.")
    elif args.command == "import-audit":
        try:
            res = import_audit(args.file, url=args.db)
        except (OSError, StoreError) as exc:
            print(f"{args.file}: {exc}", file=sys.stderr)
            return 1
        for problem in res["problems"]:
            print(problem, file=sys.stderr)
        print(f"{res['imported']} review(s) imported, {res['skipped']} already there, "
              f"{len(res['problems'])} row(s) with problems, into {status.url}.")
        return 1 if res["problems"] else 0
    elif args.command == "add-cases":
        try:
            truth = read_truth(args.truth) if args.truth else None
            res = add_batch(args.folder, truth, url=args.db)
        except (OSError, ValueError, KeyError, StoreError) as exc:
            print(f"{args.folder}: {exc}", file=sys.stderr)
            return 1
        for line in res["not_scored"]:
            print(f"not added: {line}", file=sys.stderr)
        print(f"{res['added']} case(s) added, {res['already']} already there, into {status.url}.")
    else:
        data = (signouts_csv(signout_history(url=args.db)) if args.command == "export-signouts"
                else export_csv(reviews_frame(current_only=not args.all, url=args.db)))
        try:
            _write(data, args.out)
        except OSError as exc:
            print(f"{args.out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


def _write(data: bytes, out: str) -> None:
    """CSV bytes to the file ``out``, or to standard output for ``-``."""
    if out == "-":
        sys.stdout.write(data.decode("utf-8"))
    else:
        with open(out, "wb") as fh:
            fh.write(data)


def read_truth(path: str) -> dict[str, int]:
    """slide → truth from a CSV with ``slide`` and ``truth`` columns (a case-set manifest has both)."""
    frame = pd.read_csv(path)
    if not {"slide", "truth"} <= set(frame.columns):
        raise ValueError(f"{path}: needs the columns slide and truth")
    return {str(s): int(t) for s, t in zip(frame.slide, frame.truth) if t in (0, 1)}


if __name__ == "__main__":
    sys.exit(main())
