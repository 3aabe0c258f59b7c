"""The HeForShe Practice Library: a Flask application built by create_app()."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from . import config as portal_config
from .extensions import csrf, db, limiter, login_manager, migrate

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
    configure_jobs(app)
    configure_web(app)
    from . import cli

    cli.register(app)
    return app


def configure(app: Flask, overrides: dict[str, Any]) -> None:
    """Layer defaults, environment, instance/config.py and the caller's overrides."""
    # Every file the portal writes (database, index, outbox, uploads, backups) is private to
    # the account it runs as; the folder is checked at each start and put right.
    os.umask(0o077)
    instance = Path(app.instance_path)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    for note in portal_config.make_private(instance):
        app.logger.warning(note)
    app.config.update(portal_config.DEFAULTS)
    app.config.update(portal_config.from_environment())
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(overrides)
    app.config.update(portal_config.finalise(app.config, instance))
    for warning in portal_config.production_warnings(app.config):
        app.logger.warning(warning)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign] # Flask's documented way
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )


def configure_extensions(app: Flask) -> None:
    """Bind the unbound extension singletons to this app."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)

    from .auth import sessions, sso

    sessions.register(app)
    sso.register(app)


def configure_blueprints(app: Flask) -> None:
    """Register one blueprint per area."""
    from werkzeug.routing import IntegerConverter

    class IdConverter(IntegerConverter):
        """A database id: a positive integer that fits the id columns (else a 404).

        Ids are 32-bit integers on PostgreSQL, which refuses a larger value in a query.
        """

        def __init__(self, url_map) -> None:
            super().__init__(url_map, min=1, max=2**31 - 1)

    app.url_map.converters["id"] = IdConverter
    from .account.views import bp as account_bp
    from .admin.views import bp as admin_bp
    from .auth.views import bp as auth_bp
    from .casestudies.views import bp as casestudies_bp
    from .exports.views import bp as exports_bp
    from .feeds.views import bp as feeds_bp
    from .follows.views import bp as follows_bp
    from .forces.views import bp as forces_bp
    from .health.views import bp as health_bp
    from .insights.views import bp as insights_bp
    from .library.views import bp as library_bp
    from .moderation.views import bp as moderation_bp
    from .outreach.views import bp as outreach_bp
    from .policies.views import bp as policies_bp
    from .reports.views import bp as reports_bp

    for blueprint in (
        library_bp,
        casestudies_bp,
        outreach_bp,
        forces_bp,
        reports_bp,
        exports_bp,
        follows_bp,
        feeds_bp,
        auth_bp,
        account_bp,
        moderation_bp,
        admin_bp,
        insights_bp,
        health_bp,
        policies_bp,
    ):
        app.register_blueprint(blueprint)


def configure_jobs(app: Flask) -> None:
    """Bind the jobs every area declared to this app's queue (after the areas are imported)."""
    from . import jobs

    # The jobs' modules, which no view imports: declared before the binding.
    from .auth import jobs as _email_steps  # noqa: F401
    from .follows import jobs as _digests  # noqa: F401
    from .insights import jobs as _insights  # noqa: F401
    from .jobs import retention  # noqa: F401
    from .search import jobs as _search_repair  # noqa: F401

    jobs.init_app(app)


def configure_web(app: Flask) -> None:
    """Install error pages, security headers and template helpers."""
    from .auth import access
    from .search import sync
    from .web import errors, headers, logs, metrics, request_guard, request_id, templating

    request_id.register(app)
    metrics.register(app)
    sync.register(app)
    logs.register(app)
    request_guard.register(app)
    access.register(app)
    errors.register(app)
    headers.register(app)
    templating.register(app)
