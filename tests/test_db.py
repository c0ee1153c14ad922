import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from portal.booking.models import Cohort
from portal.models import metadata
from tests import factories


def test_migrations_match_the_models(db):
    """An empty database migrated to head has exactly the schema the models describe."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_naive_datetimes_are_refused(session):
    patient = factories.create_patient(session)
    patient.created_at = dt.datetime(2026, 3, 29, 1, 30)  # naive: refused, not silently stored
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()
    session.rollback()


def test_datetimes_come_back_in_utc(session):
    london = dt.timezone(dt.timedelta(hours=1))
    patient = factories.create_patient(session, created_at=dt.datetime(2026, 7, 1, 18, 0, tzinfo=london))
    session.expire_all()
    loaded = session.get(type(patient), patient.id)
    assert loaded.created_at == dt.datetime(2026, 7, 1, 17, 0, tzinfo=dt.UTC)
    assert loaded.created_at.utcoffset() == dt.timedelta(0)


def test_sqlite_runs_in_wal_with_foreign_keys(db):
    if not db.is_sqlite:
        pytest.skip("SQLite pragmas: this run is on PostgreSQL")
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


def test_seat_count_can_never_exceed_capacity(session):
    cohort = factories.create_cohort(session, capacity=2, seats_taken=2)
    cohort.seats_taken = 3
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert session.get(Cohort, cohort.id).seats_taken == 2


def test_foreign_keys_are_enforced(session):
    session.execute(text("INSERT INTO venue (name, short_name, address, access_notes) VALUES ('a','b','c','d')"))
    with pytest.raises(IntegrityError):
        session.execute(text(
            "INSERT INTO booking (patient_id, service_key, cohort_id, status, booked_by_staff, created_at)"
            " VALUES (999999, 't1-group', 999999, 'active', false, CURRENT_TIMESTAMP)"
        ))
    session.rollback()


def test_migrations_form_one_line():
    """Two migrations written in parallel off the same parent must be put in order before merging."""
    from alembic.script import ScriptDirectory

    from portal.cli import _alembic_config

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"several heads: {script.get_heads()}"
    assert [rev.revision for rev in script.walk_revisions()][-1] == "0001"


def test_venues_named_alike_before_names_were_unique_do_not_stop_the_upgrade(tmp_path):
    """Migration 0023: the oldest of a name keeps the key, a later copy keeps none; and it goes back down."""
    from alembic import command
    from sqlalchemy import create_engine

    from portal.cli import _alembic_config
    from tests.fixtures.databases import test_database_url

    with test_database_url(tmp_path) as url:
        config = _alembic_config(url)
        command.upgrade(config, "0021")
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                for name in ("Finsbury Health Centre", "finsbury  health centre", "Hornsey Central"):
                    connection.execute(text("INSERT INTO venue (name, short_name, address, access_notes, is_online) "
                                            "VALUES (:name, 'Here', 'Street', '', false)"), {"name": name})
            command.upgrade(config, "0023")
            with engine.connect() as connection:
                keys = connection.execute(text("SELECT name, name_key FROM venue ORDER BY id")).all()
            assert [tuple(row) for row in keys] == [("Finsbury Health Centre", "finsbury health centre"),
                                                    ("finsbury  health centre", None),
                                                    ("Hornsey Central", "hornsey central")]
            command.downgrade(config, "0021")
        finally:
            engine.dispose()
