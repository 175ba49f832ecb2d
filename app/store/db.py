"""The review store's engine and sessions: ``PATHREVIEW_DB_URL`` (PostgreSQL for several app instances) or,
by default, a SQLite file in the working directory.

Importable on its own (no Streamlit): other parts of the app and their migrations build on ``engine()`` and
``session()``.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

DB_ENV = "PATHREVIEW_DB_URL"
DEFAULT_FILE = "pathreview.db"
CONNECT_TIMEOUT_S = 5  # an unreachable server must not hold a page for minutes

WRITE_OPTION = "pathreview_write"
_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def database_url() -> str:
    """``$PATHREVIEW_DB_URL``, else a SQLite file ``./pathreview.db``."""
    return os.environ.get(DB_ENV, "").strip() or f"sqlite:///{Path(DEFAULT_FILE).resolve()}"


def safe_url(url: str | URL) -> str:
    """The URL as it may be shown to users and logs: the password is masked."""
    try:
        return make_url(str(url)).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: show nothing of it that could hold a secret
        return "<an invalid database URL>"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL: readers never block the writer and a killed writer leaves the last committed state;
    # synchronous=FULL: a commit is on disk when it returns; foreign keys are off by default in SQLite.
    dbapi_conn.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _sqlite_begin)
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _sqlite_begin(conn) -> None:
    # A write transaction takes the write lock at BEGIN (IMMEDIATE), so two writers queue up on the busy
    # timeout; a deferred one that read first would fail at once when another writer got there between.
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str | None = None) -> Engine:
    """A new engine for ``url`` (default ``database_url()``) with the store's connection settings."""
    url = url or database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(parsed, connect_args={"timeout": 10, "check_same_thread": False})
        event.listen(eng, "connect", _sqlite_pragmas)
        event.listen(eng, "begin", _sqlite_begin)
        return eng
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":  # plain postgresql:// means psycopg 3 here, not psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    return create_engine(parsed, pool_pre_ping=True)


def engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default ``database_url()``), created once."""
    url = url or database_url()
    with _lock:
        if url not in _engines:
            _engines[url] = make_engine(url)
        return _engines[url]


def dispose_all() -> None:
    """Close every engine (tests; a process that forks)."""
    with _lock:
        for eng in _engines.values():
            eng.dispose()
        _engines.clear()


@contextmanager
def session(url: str | None = None, *, write: bool = False) -> Iterator[Session]:
    """A session in one transaction: committed when the block ends, rolled back on an exception.

    ``write=True`` for a transaction that writes (on SQLite it then holds the write lock from the start).
    """
    bind = engine(url).execution_options(**{WRITE_OPTION: write})
    with sessionmaker(bind, expire_on_commit=False).begin() as s:
        yield s
