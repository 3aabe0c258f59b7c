"""The HeForShe Practice Library: a Flask application built by create_app()."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from . import config as portal_config
from .extensions import csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the portal: configuration, extensions, blueprints, error pages, headers."""
    overrides = dict(config or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or portal_config.instance_path_from_env()
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    configure(app, overrides)
    configure_extensions(app)
    configure_blueprints(app)
    configure_web(app)
    from . import cli

    cli.register(app)
    return app


def configure(app: Flask, overrides: dict[str, Any]) -> None:
    """Layer defaults, environment, instance/config.py and the caller's overrides."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.update(portal_config.DEFAULTS)
    app.config.update(portal_config.from_environment())
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(overrides)
    app.config.update(portal_config.finalise(app.config, instance))
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"


def configure_extensions(app: Flask) -> None:
    """Bind the unbound extension singletons to this app."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)

    from .models import User

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        if not user_id.isdigit():
            return None
        return db.session.get(User, int(user_id))


def configure_blueprints(app: Flask) -> None:
    """Register one blueprint per area."""
    from .casestudies.views import bp as casestudies_bp
    from .library.views import bp as library_bp
    from .web.health import bp as health_bp

    app.register_blueprint(library_bp)
    app.register_blueprint(casestudies_bp)
    app.register_blueprint(health_bp)


def configure_web(app: Flask) -> None:
    """Install error pages, security headers and template helpers."""
    from .web import errors, headers, templating

    errors.register(app)
    headers.register(app)
    templating.register(app)
