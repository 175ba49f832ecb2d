"""CSV that spreadsheets open as data: the one guard every CSV the project writes goes through.

A cell that starts like a formula (``=``, ``+``, ``-``, ``@``, a tab or carriage return, or their full-width
forms, which some spreadsheets also accept) is run by Excel, LibreOffice and Google Sheets when the file is
opened: ``=HYPERLINK(...)`` in a file name or a reviewer's comment becomes a live link or worse. Such cells get
a leading apostrophe, which spreadsheets show as text and hide. Numeric columns are left as they are; text
is guarded even when it looks like a number (``+1``), as the OWASP advice on CSV injection has it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the app imports this module at start; pandas arrives with the first frame
    import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet should show it: text that would run as a formula gets a leading ``'``."""
    if not isinstance(value, str):
        return value
    return "'" + value if value.lstrip(" ").startswith(FORMULA_START) else value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names cannot run as formulas; write CSV from this."""
    out = frame.rename(columns=lambda c: safe_cell(c) if isinstance(c, str) else c)
    for col in out.columns:
        if out[col].dtype.kind in "OSU" or str(out[col].dtype) == "string":
            out[col] = out[col].map(safe_cell)
    return out


NOTICE = "notice"


def csv_bytes(frame: pd.DataFrame, notice: str | None = None) -> bytes:
    """``frame`` as UTF-8 CSV, guarded; ``notice`` (the research-use line, the model) goes in a last column
    ``notice``, on the first row: a plain table every CSV reader reads as it is, with no line to skip."""
    if notice:
        frame = frame.reset_index(drop=True) if len(frame) else frame.reindex(range(1))  # an empty table keeps it
        frame = frame.assign(**{NOTICE: [notice] + [""] * (len(frame) - 1)})
    return safe_frame(frame).to_csv(index=False, lineterminator="\n").encode("utf-8")
