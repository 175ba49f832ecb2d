"""Alembic environment of the review store: run by ``app.store.migrate.upgrade`` with an open connection."""
from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from app.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    # batch mode: SQLite cannot ALTER most things in place; later revisions rely on it
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    eng = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                             poolclass=pool.NullPool)
    with eng.connect() as conn:
        _run(conn)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
