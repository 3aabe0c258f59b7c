"""Configuration: defaults, PORTAL_* variables, instance/config.py, the generated secret key."""

import os
import stat

from sqlalchemy import text

from portal.extensions import db

from ..backends import embedded_only
from ..conftest import make_app


@embedded_only
def test_runtime_files_live_in_the_instance_folder(tmp_path):
    app = make_app(tmp_path / "inst")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'inst' / 'portal.db'}"
    assert app.config["SEARCH_INDEX_PATH"] == str(tmp_path / "inst" / "search")
    assert app.config["OUTBOX_PATH"] == str(tmp_path / "inst" / "outbox")


def test_secret_key_is_generated_once_private_and_reused(tmp_path):
    first = make_app(tmp_path / "inst").config["SECRET_KEY"]
    key_file = tmp_path / "inst" / "secret_key"
    assert len(first) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert make_app(tmp_path / "inst").config["SECRET_KEY"] == first
    assert make_app(tmp_path / "other").config["SECRET_KEY"] != first


def test_environment_variables_configure_the_portal(tmp_path, monkeypatch):
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path / "from-env"))
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("PORTAL_PUBLIC_LIBRARY", "1")
    monkeypatch.setenv("PORTAL_ALLOWED_EMAIL_DOMAINS", "police.uk, .example.org")
    from portal import create_app

    app = create_app()
    assert app.instance_path == str(tmp_path / "from-env")
    assert app.config["SECRET_KEY"] == "k" * 40
    assert app.config["PUBLIC_LIBRARY"] is True
    assert app.config["ALLOWED_EMAIL_DOMAINS"] == ("police.uk", "example.org")
    assert not (tmp_path / "from-env" / "secret_key").exists()


def test_instance_config_file_overrides_the_environment(tmp_path, monkeypatch):
    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "config.py").write_text("PUBLIC_LIBRARY = True\nSITE_NAME = 'Test Library'\n")
    monkeypatch.setenv("PORTAL_PUBLIC_LIBRARY", "0")
    app = make_app(instance)
    assert app.config["PUBLIC_LIBRARY"] is True
    assert app.config["SITE_NAME"] == "Test Library"


@embedded_only
def test_sqlite_runs_with_wal_busy_timeout_and_foreign_keys(app):
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert db.session.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_the_test_run_does_not_see_the_developers_portal_variables():
    assert not [name for name in os.environ if name.startswith("PORTAL_")]


def test_an_unsupported_setting_stops_the_start_with_a_clear_message(tmp_path):
    import pytest

    from portal.config import ConfigError

    with pytest.raises(ConfigError, match="PORTAL_SEARCH_BACKEND='elastic'"):
        make_app(tmp_path / "inst", SEARCH_BACKEND="elastic")
    with pytest.raises(ConfigError, match="PORTAL_MAIL_BACKEND"):
        make_app(tmp_path / "inst", MAIL_BACKEND="pigeon")


def test_an_empty_secret_key_file_is_refused_not_used(tmp_path):
    import pytest

    from portal.config import ConfigError

    instance = tmp_path / "inst"
    instance.mkdir()
    (instance / "secret_key").write_text("")
    with pytest.raises(ConfigError, match="no usable key"):
        make_app(instance)


def test_retention_settings_default_to_six_years_of_audit_and_30_days_of_mail(tmp_path):
    app = make_app(tmp_path / "inst")
    assert app.config["AUDIT_RETENTION_DAYS"] == 730
    assert app.config["MAIL_RETENTION_DAYS"] == 30


def test_retention_settings_are_read_from_the_environment_and_checked(tmp_path, monkeypatch):
    import pytest

    from portal.config import ConfigError

    monkeypatch.setenv("PORTAL_AUDIT_RETENTION_DAYS", "0")
    monkeypatch.setenv("PORTAL_MAIL_RETENTION_DAYS", "7")
    app = make_app(tmp_path / "inst")
    assert (app.config["AUDIT_RETENTION_DAYS"], app.config["MAIL_RETENTION_DAYS"]) == (0, 7)
    # 6 meant as years would delete almost the whole audit log: refused, with the reason.
    with pytest.raises(ConfigError, match=r"PORTAL_AUDIT_RETENTION_DAYS=6 .* from 30 to 36500"):
        make_app(tmp_path / "inst", AUDIT_RETENTION_DAYS=6)
    with pytest.raises(ConfigError, match="PORTAL_MAIL_RETENTION_DAYS=0"):
        make_app(tmp_path / "inst", MAIL_RETENTION_DAYS=0)
    with pytest.raises(ConfigError, match="PORTAL_MAIL_RETENTION_DAYS=3651"):
        make_app(tmp_path / "inst", MAIL_RETENTION_DAYS=3651)
