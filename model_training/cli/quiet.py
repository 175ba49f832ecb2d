"""Quiet command lines: library start-up chatter stays off the terminal unless it is asked for.

Each CLI calls ``quiet_cli()`` before TensorFlow is imported. Progress bars, results, the project's own log
lines and errors are untouched. ``--verbose`` (where a CLI has it) or ``PATHREVIEW_DEBUG=1`` leaves the
libraries' logs as they are, for diagnosing an installation.
"""
from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shlex
import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

DEBUG_ENV = "PATHREVIEW_DEBUG"
VERBOSE_HELP = f"show library logs (TensorFlow, XLA, PNG exporter); {DEBUG_ENV}=1 does the same"
DEBUG_EPILOG = f"Library logs (TensorFlow, XLA, the PNG exporter) are silenced; set {DEBUG_ENV}=1 to see them."
LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"

# kaleido drives Chromium through choreographer, which logs every browser step and a failed export as
# several tracebacks; figures.save_figure reports a failed export in one line instead.
EXPORTER_LOGGERS = ("kaleido", "choreographer", "logistro", "browser_proc", "chrome_wrapper", "logging_utils")


def debug_requested() -> bool:
    """True when PATHREVIEW_DEBUG is set (the app reads it too: it then re-raises page errors)."""
    return bool(os.environ.get(DEBUG_ENV))


@contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null: C++ libraries write there directly, around ``sys.stderr``."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_cli(verbose: bool = False, tensorflow: bool = True) -> bool:
    """Silence library noise for a command-line run; returns False when ``verbose`` or debug keeps it.

    With ``tensorflow`` the framework is imported here, with the native stderr muted: its start-up lines
    (oneDNN, CUDA probing, absl's "before InitializeLog" notice) are printed at load time, before
    TF_CPP_MIN_LOG_LEVEL takes effect. An import error still raises, with stderr restored.
    """
    if verbose or debug_requested():
        for name in EXPORTER_LOGGERS:  # the browser steps at INFO drown everything else even when debugging
            logging.getLogger(name).setLevel(logging.WARNING)
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"  # later C++ logs: XLA notices, cost-model warnings, cuInit errors
    for name in EXPORTER_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # Dask's workers (forked, so this level holds in them) warn of each task cancelled when a batch is stopped
    # with Ctrl-C; the slides command says once what was stopped
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
    # keras warns on every fit() over a tf.data pipeline that shuffle=True is ignored, and similar advice
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|tf_keras)\b")
    if tensorflow and "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow"):
        with _native_stderr_muted():
            import tensorflow  # noqa: F401
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    return True


def start_command(ap: argparse.ArgumentParser, argv: list[str] | None = None) -> tuple[argparse.Namespace, str]:
    """The start of a command that writes a bundle: parse ``argv`` (default: the process's), quiet the libraries
    unless ``--verbose``, log the project's steps with their times; returns the arguments and the command line as
    run, which the bundle's card records."""
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    quiet_cli(args.verbose)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return args, f"{ap.prog} " + " ".join(shlex.quote(a) for a in argv)
