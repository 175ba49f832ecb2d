"""Quiet command lines: library logs off unless PATHREVIEW_DEBUG is set, a failed PNG export in one line."""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from model_training.evaluation import figures

REPO = Path(__file__).resolve().parent.parent
# what a CLI does first, then the framework import that prints TensorFlow's start-up lines
SNIPPET = ("from model_training.cli.quiet import quiet_cli; quiet_cli(); import os, tensorflow; "
           "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "PATHREVIEW_DEBUG"}
    full.update(TF_CPP_MIN_LOG_LEVEL="0", **env)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True, text=True,
                          timeout=120)


def _log_messages(stderr: str) -> set[str]:
    """Log lines without the timestamp and thread id that differ between runs."""
    return {re.sub(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ", "", line) for line in stderr.splitlines() if line.strip()}


def test_tensorflow_start_up_is_silenced_unless_debugging():
    plain = _python("import tensorflow")
    quiet = _python(SNIPPET)
    debug = _python(SNIPPET, PATHREVIEW_DEBUG="1")
    assert quiet.returncode == 0 and quiet.stdout.strip() == "3"
    assert quiet.stderr == "", quiet.stderr
    # debugging leaves TensorFlow's own settings and output as they would be without PathReview
    assert debug.returncode == 0 and debug.stdout.strip() == "0"
    assert _log_messages(plain.stderr) <= _log_messages(debug.stderr), debug.stderr


def _fig():
    y = np.array([0, 0, 1, 1, 0, 1])
    return figures.roc_figure(y, np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9]))


def test_no_browser_is_one_warning_and_html_only(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(figures, "_png_off", None)
    monkeypatch.setattr(figures, "find_browser", lambda: None)
    with caplog.at_level(logging.WARNING, logger=figures.__name__):
        paths = [p for name in ("roc", "confusion", "reliability") for p in
                 figures.save_figure(_fig(), tmp_path / "figures" / name)]
    assert [p.suffix for p in paths] == [".html"] * 3 and not list(tmp_path.rglob("*.png"))
    assert caplog.messages == [f"figures/roc.html written; PNG skipped for this and later figures: "
                               f"{figures.NO_BROWSER}"]


def test_failed_export_is_one_line_with_the_first_line_of_the_error(tmp_path, monkeypatch, caplog):
    calls = []

    def broken(self, *args, **kwargs):
        calls.append(args)
        raise RuntimeError("\n\nKaleido requires Google Chrome to be installed.\n\nEither download ...\n")

    monkeypatch.setattr(figures, "_png_off", None)
    monkeypatch.setattr(figures, "find_browser", lambda: "/usr/bin/chromium")
    monkeypatch.setattr(figures.go.Figure, "write_image", broken)
    with caplog.at_level(logging.WARNING, logger=figures.__name__):
        for name in ("roc", "confusion"):
            figures.save_figure(_fig(), tmp_path / "figures" / name)
    assert len(calls) == 1, "a browser that failed once is not launched again for every figure"
    assert caplog.messages == ["figures/roc.html written; PNG skipped for this and later figures: "
                               "Kaleido requires Google Chrome to be installed."]
