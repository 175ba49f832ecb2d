"""Schema migrations on start: Alembic, with the revisions shipped in ``app/store/migrations``."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
PG_LOCK_ID = 0x50524556  # any constant: instances starting together migrate one after the other


def config(connection=None) -> Config:
    """An Alembic config without an ini file; ``connection`` is the one the migrations run on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()


def current(eng: Engine) -> str | None:
    with eng.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(eng: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``; a no-op when it is there already."""
    with eng.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_LOCK_ID})
            conn.commit()
        try:
            command.upgrade(config(conn), revision)
            conn.commit()
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_ID})
                conn.commit()
