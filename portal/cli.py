"""The `portal` command line: set up, seed, import and manage the portal."""

from __future__ import annotations

import logging
import re
import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from .models import Role

#: How Werkzeug's development server starts its banner (`portal run`, `make run`).
SERVER_BANNER_START = "WARNING: This is a development server."
ANSI_STYLES = re.compile(r"^(?:\x1b\[[0-9;]*m)+")  # the colour it may start with


class ServerBanner(logging.Filter):
    """Let the development server's start-up banner through one line at a time.

    The portal escapes every line break in a log message, so that nothing a visitor types
    can forge a log line (web/logs.py). The banner is Werkzeug's own, not a visitor's:
    several lines in one message, which that escaping printed as a literal "\\n". This
    filter, ahead of that one, logs each of its lines as a message of its own. A request's
    log line starts with the client's address, so no visitor's words can pass for it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.msg
        if (
            record.args
            or not isinstance(message, str)
            or "\n" not in message
            or not ANSI_STYLES.sub("", message).startswith(SERVER_BANNER_START)
        ):
            return True
        logger = logging.getLogger(record.name)
        for line in message.split("\n"):
            logger.log(record.levelno, line)
        return False


def show_server_banner_lines() -> None:
    """Put the ServerBanner filter first on Werkzeug's logger (once)."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, ServerBanner) for f in logger.filters):
        logger.filters.insert(0, ServerBanner())


def main() -> None:
    """Run the `portal` console script: the Flask CLI of this app."""
    from . import create_app

    show_server_banner_lines()
    FlaskGroup(create_app=create_app, help="HeForShe Practice Library commands.")(
        prog_name="portal"
    )


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create or upgrade the database and seed forces and themes."""
    init_db()
    click.echo("Database ready.")


def init_db() -> dict[str, int]:
    """Run the migrations, seed reference data and create the search index."""
    from flask_migrate import upgrade

    from .reference import seed_reference_data
    from .search import get_backend

    upgrade()
    added = seed_reference_data()
    backend = get_backend()
    backend.ensure_index()
    if not backend.is_current():  # an upgrade changed what the index holds
        from .search.sync import reindex

        reindex()
    return added


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Add demo accounts and case studies (safe to run again) and print the logins."""
    from flask import current_app

    from .demo import DEMO_ACCOUNTS, seed_demo

    if current_app.config["ENV"] != "development" and not current_app.config.get("TESTING"):
        raise click.ClickException(
            "seed-demo adds accounts whose passwords are public: it runs only with "
            "PORTAL_ENV=development (make run sets it)."
        )
    init_db()
    added = seed_demo()
    from .search.sync import apply_all

    apply_all()
    click.echo(
        f"Demo data ready: {added['accounts']} accounts and "
        f"{added['case_studies']} case studies added."
    )
    click.echo("Demo logins (email / password):")
    for account in DEMO_ACCOUNTS:
        click.echo(f"  {account.role.value:<12} {account.email} / {account.password}")
        if account.totp_secret:
            click.echo(f"  {'':<12} two-factor key for an authenticator app: {account.totp_secret}")


@click.command("import-case-studies")
@with_appcontext
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_command(file: str) -> None:
    """Import case studies from a JSON Lines file; nothing is written if any line is wrong."""
    from .casestudies.importer import ImportFailed, import_case_studies
    from .search.sync import apply_all

    try:
        count = import_case_studies(
            file, progress=lambda n: click.echo(f"  {n:,} written", err=True)
        )
    except ImportFailed as failure:
        for line, reason in failure.errors:
            click.echo(f"line {line}: {reason}", err=True)
        raise click.ClickException("Nothing was imported.") from None
    click.echo(f"Imported {count} case studies.")
    indexed = apply_all()
    click.echo(f"Search index updated for {indexed} published case studies.")


@click.command("create-user")
@with_appcontext
@click.argument("email")
@click.option("--name", required=True, help="The person's full name.")
@click.option("--force", "force", required=True, help="Force name or alias, e.g. 'GMP'.")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.CONTRIBUTOR.value,
    show_default=True,
)
def create_user_command(email: str, name: str, force: str, role: str) -> None:
    """Create a confirmed user; the password comes from a prompt, or stdin when piped."""
    from .accounts import AccountError, create_user

    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = create_user(email, name, force, Role(role), password)
    except AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created {user.role.value} {user.email} ({user.force.name}).")


@click.command("reindex")
@with_appcontext
def reindex_command() -> None:
    """Rebuild the search index from the database and swap it in (searches keep working)."""
    import time

    from .search.sync import reindex

    started = time.perf_counter()
    count = reindex(progress=lambda done: click.echo(f"  {done:,} indexed", err=True))
    click.echo(
        f"Reindexed {count} published case studies in {time.perf_counter() - started:.1f} s."
    )


@click.command("search-sync")
@with_appcontext
def search_sync_command() -> None:
    """Apply every queued search-index change (retrying any that failed)."""
    from .search.sync import apply_all

    click.echo(f"Brought {apply_all()} case studies up to date in the search index.")


@click.command("search-check")
@with_appcontext
def search_check_command() -> None:
    """Report case studies missing from, stale in, or wrongly in the index; exit 1 if any."""
    from .search.sync import check, pending_count

    drift = check()
    problems = (("missing", drift.missing), ("stale", drift.stale), ("not published", drift.extra))
    for label, ids in problems:
        if ids:
            listed = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
            click.echo(f"{label}: {len(ids)} ({listed})")
    click.echo(f"queued changes: {pending_count()}")
    if not drift.clean:
        raise click.ClickException(
            "The search index does not match the database: "
            "run `portal search-sync` or `portal reindex`."
        )
    click.echo("The search index matches the database.")


@click.command("send-digests")
@with_appcontext
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=7,
    show_default=True,
    help="Include case studies first published in this many days before now.",
)
def send_digests_command(days: int) -> None:
    """Email each user who wants it a digest of newly published case studies they follow.

    Safe to run again, or twice at once: a case study is never sent to anyone twice.
    """
    from .follows.digests import send_digests

    run = send_digests(days=days)
    click.echo(
        f"{run.digests} digest{'' if run.digests == 1 else 's'} queued for delivery, "
        f"{run.case_studies} case stud{'y' if run.case_studies == 1 else 'ies'}."
    )
    if run.failed:
        raise click.ClickException(
            f"{run.failed} digest{'' if run.failed == 1 else 's'} could not be written "
            "(see the log); the next run tries again."
        )


@click.command("retention")
@with_appcontext
@click.option("--dry-run", is_flag=True, help="Only say how much each part would delete now.")
def retention_command(dry_run: bool) -> None:
    """Delete what is older than its retention period now (the worker does it daily at
    03:30), or with --dry-run say what would go. The periods are the privacy notice's."""
    from .insights.services import delete_expired, expired_count
    from .jobs.retention import due_now, retention

    if dry_run:
        due = {**due_now(), "purge_search_insights": expired_count()}
        for name, count in due.items():
            click.echo(f"{name.removeprefix('purge_').replace('_', ' ')}: {count:,} would go")
        return
    deleted = {**retention(), "purge_search_insights": delete_expired()}
    for name, count in deleted.items():
        click.echo(f"{name.removeprefix('purge_').replace('_', ' ')}: {count:,} deleted")


@click.command("worker")
@with_appcontext
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Jobs run at once by this process.",
)
@click.option(
    "--schedule/--no-schedule",
    default=True,
    show_default=True,
    help="Also queue the scheduled jobs (digests, repairs, retention). Several workers may "
    "all do so: every scheduled job is safe to run twice.",
)
def worker_command(threads: int, schedule: bool) -> None:
    """Run the job queue's worker: mail delivery, digests, report PDFs, repairs."""
    from flask import current_app

    from .jobs import queue_of

    huey = queue_of(current_app).huey
    if current_app.config["LOG_FORMAT"] != "json":  # JSON lines go to the root logger already
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s %(name)s: %(message)s"))
        for name in ("huey", "portal"):
            logging.getLogger(name).addHandler(handler)
    logging.getLogger("huey").setLevel(logging.INFO)  # each job run, retried or failed
    click.echo(
        f"Worker started on {current_app.config['QUEUE_URL'].split('@')[-1]} "
        f"with {threads} thread{'s' if threads > 1 else ''} (Ctrl+C stops it)."
    )
    consumer = huey.create_consumer(
        workers=threads,
        worker_type="thread",
        periodic=schedule,
        initial_delay=0.1,
        backoff=1.15,
        max_delay=1.0,
        check_worker_health=True,
    )
    consumer.run()


@click.command("backup")
@with_appcontext
@click.argument("destination", type=click.Path(file_okay=False), default="backups")
def backup_command(destination: str) -> None:
    """Back up the embedded database, secret key and config into DESTINATION (a folder),
    consistently, while the portal runs."""
    from pathlib import Path

    from .backup import BackupError, create_backup

    try:
        path = create_backup(Path(destination))
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Backed up to {path}")


@click.command("restore")
@with_appcontext
@click.argument("backup", type=click.Path(exists=True, dir_okay=False))
@click.option("--replace", is_flag=True, help="Overwrite an existing database (portal stopped).")
def restore_command(backup: str, replace: bool) -> None:
    """Restore a backup made by `portal backup` into this instance, then rebuild the index."""
    from pathlib import Path

    from flask_migrate import upgrade

    from .backup import BackupError, restore_backup
    from .search import get_backend
    from .search.sync import reindex

    try:
        manifest = restore_backup(Path(backup), replace=replace)
    except BackupError as error:
        raise click.ClickException(str(error)) from None
    upgrade()  # a backup from an older version is brought up to this one
    get_backend().ensure_index()
    count = reindex()
    rows = sum(manifest["rows"].values())
    click.echo(
        f"Restored the backup of {manifest['created']} ({rows:,} rows); "
        f"search index rebuilt with {count:,} published case studies."
    )


@click.command("migrate-data")
@with_appcontext
@click.option("--to", "target", required=True, help="postgresql+psycopg://user@host/database")
def migrate_data_command(target: str) -> None:
    """Move this embedded install's data to an empty PostgreSQL database and verify it."""
    from flask import current_app
    from flask_migrate import upgrade

    from . import create_app
    from .extensions import db
    from .migrate_data import MigrationError, compare, copy_all, target_engine
    from .search.sync import reindex

    source = db.engine
    if source.dialect.name != "sqlite":
        raise click.ClickException("migrate-data moves the embedded SQLite database")
    try:
        engine = target_engine(target)
    except MigrationError as error:
        raise click.ClickException(str(error)) from None
    there = create_app(
        {
            "INSTANCE_PATH": current_app.instance_path,
            "DATABASE_URL": target,
            "SEARCH_BACKEND": "postgres",
            "SECRET_KEY": current_app.config["SECRET_KEY"],
        }
    )
    try:
        try:
            with there.app_context():
                upgrade()  # the schema, by the same migrations
            copy_all(source, engine, lambda name, n: click.echo(f"  {name}: {n:,} rows copied"))
        except MigrationError as error:
            raise click.ClickException(str(error)) from None
        except Exception as error:  # a connection or SQL error: the copy was rolled back
            raise click.ClickException(f"{type(error).__name__}: {error}") from None
        checks = compare(source, engine)
        for check in checks:
            verdict = "same" if check.ok else "DIFFERENT"
            click.echo(
                f"  {check.name:<22} {check.source_rows:>9,} -> {check.target_rows:>9,} rows  "
                f"{verdict}"
            )
        if not all(check.ok for check in checks):
            raise click.ClickException("The copy differs from the source: do not switch over.")
        with there.app_context():
            count = reindex()
    finally:
        with there.app_context():
            db.session.remove()
            db.engine.dispose()
        engine.dispose()
    rows = sum(check.source_rows for check in checks)
    click.echo(
        f"Moved {rows:,} rows in {len(checks)} tables; row counts and content checksums "
        f"match. PostgreSQL search holds {count:,} published case studies. Now set "
        "PORTAL_DATABASE_URL to the target and PORTAL_SEARCH_BACKEND=postgres."
    )


def register(app: Flask) -> None:
    """Add the portal's commands to the app's CLI."""
    for command in (
        init_db_command,
        seed_demo_command,
        import_command,
        create_user_command,
        reindex_command,
        search_sync_command,
        search_check_command,
        send_digests_command,
        retention_command,
        worker_command,
        backup_command,
        restore_command,
        migrate_data_command,
    ):
        app.cli.add_command(command)
