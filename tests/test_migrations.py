"""Migrations run on SQLite and PostgreSQL, and agree with the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from app import create_app
from app.extensions import db
from tests.conftest import TEST_DATABASE_URL, create_postgres_database, service_missing


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/migrations.sqlite3"
        return
    if not TEST_DATABASE_URL:
        service_missing("PASOK_TEST_DATABASE_URL is not set")
    uri, drop = create_postgres_database(TEST_DATABASE_URL)
    yield uri
    drop()


def test_migrations_match_the_models(fresh_database, base_config):
    app = create_app({**base_config, "SQLALCHEMY_DATABASE_URI": fresh_database})
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
        assert diff == []
        tables = set(inspect(db.engine).get_table_names())
        assert {"tenants", "domains", "users", "audit_log", "alembic_version"} <= tables
        db.engine.dispose()


def test_migrations_downgrade_to_nothing_and_back(fresh_database, base_config):
    app = create_app({**base_config, "SQLALCHEMY_DATABASE_URI": fresh_database})
    with app.app_context():
        upgrade()
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "users" in inspect(db.engine).get_table_names()
        db.engine.dispose()
