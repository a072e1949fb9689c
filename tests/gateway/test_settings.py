"""Gateway settings: the embedded default is an absolute path, bad values fail on load."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.errors import ConfigurationError
from gateway.settings import GatewaySettings
from gateway.store.engine import make_engine


def test_the_default_store_is_sqlite_under_an_absolute_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = GatewaySettings()
    assert settings.environment == "development"
    assert settings.data_dir == tmp_path / "var"
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'gateway.sqlite'}"


def test_settings_come_from_prefixed_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSR_GATEWAY_ENVIRONMENT", "production")
    monkeypatch.setenv("DSR_GATEWAY_DATA_DIR", "state")
    monkeypatch.setenv("DSR_GATEWAY_DATABASE_URL", "sqlite:///db/meta.sqlite")
    settings = GatewaySettings()
    assert settings.environment == "production"
    assert settings.data_dir == tmp_path / "state"
    assert settings.database_url == f"sqlite:///{tmp_path / 'db' / 'meta.sqlite'}"


def test_postgresql_means_psycopg() -> None:
    url = "postgresql://dsr:secret@db.internal:5432/dsr"
    settings = GatewaySettings(database_url=url)
    assert settings.database_url == "postgresql+psycopg://dsr:secret@db.internal:5432/dsr"


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"environment": "staging"}, "development"),
        ({"database_url": "mysql://db/dsr"}, "unsupported database"),
        ({"database_url": "postgresql+psycopg2://db/dsr"}, "unsupported database"),
        ({"database_url": "postgresql+psycopg://db"}, "must name the database"),
        ({"database_url": "not a url"}, "not a database URL"),
        ({"database_url": "sqlite://"}, "in-memory"),
        ({"database_url": "sqlite:///:memory:"}, "in-memory"),
    ],
)
def test_bad_values_fail_on_load(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        GatewaySettings(**values)  # type: ignore[arg-type]


def test_a_data_dir_that_is_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ValidationError, match="not a directory"):
        GatewaySettings(data_dir=tmp_path / "file")


def test_make_engine_refuses_other_databases() -> None:
    with pytest.raises(ConfigurationError, match="unsupported"):
        make_engine("mysql+pymysql://db/dsr")


def test_make_engine_sets_up_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'dir' / 'gw.sqlite'}")
    try:
        with engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}
    assert (tmp_path / "new" / "dir").stat().st_mode & 0o777 == 0o700


def test_production_publicises_product_registrations(tmp_path: Path) -> None:
    assert GatewaySettings(data_dir=tmp_path, product_publicity_working_days=0)
    with pytest.raises(ValidationError, match="at least one working day"):
        GatewaySettings(
            data_dir=tmp_path, environment="production", product_publicity_working_days=0
        )
