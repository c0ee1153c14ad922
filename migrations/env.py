"""Alembic environment: the database URL comes from the caller or the portal's settings."""

from alembic import context

from portal.models import metadata
from portal.settings import settings_from_environment

config = context.config
url = config.get_main_option("sqlalchemy.url") or str(settings_from_environment()["DATABASE_URL"])


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    from portal.db import make_engine

    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(url)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _sqlite_foreign_keys(connection, *, on: bool) -> None:
    # Straight on the driver's connection: through SQLAlchemy the statement would open a transaction first.
    connection.connection.driver_connection.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def _run(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a table by rebuilding it (batch mode); the foreign keys that point at the old copy
        # would refuse its drop. They are switched off for the migration, outside any transaction (SQLite
        # ignores the pragma inside one), and checked once it has run.
        _sqlite_foreign_keys(connection, on=False)
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.commit()
        _sqlite_foreign_keys(connection, on=True)
        if broken:
            raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
