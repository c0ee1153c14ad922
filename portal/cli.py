"""The `portal` command: serve, scheduler, migrations, demo data and asset building."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup

from portal import create_app


def _app(*_args):
    return create_app()


@click.group(cls=FlaskGroup, create_app=_app, add_default_commands=False, add_version_option=False)
def main() -> None:
    """Haringey and Islington pain management portal."""


def _alembic_config(url: str):
    from alembic.config import Config

    root = Path(__file__).resolve().parent.parent
    config = Config(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str) -> None:
    from alembic import command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(url), "head")


@main.command("db-upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    upgrade_database(current_app.config["DATABASE_URL"])
    click.echo("Database is at the newest schema.")


@main.command("demo-data")
def demo_data() -> None:
    """Load demo data if the database is empty, and print the demo sign-ins."""
    from portal import demo_data as demo
    from portal.db import utcnow

    db = current_app.extensions["db"]
    with db.transaction() as session:
        if demo.has_data(session):
            click.echo("The database already has data: demo data not loaded again.")
            logins = None
        else:
            now = utcnow()
            logins = demo.load(session, current_app.extensions["domain"], today=now.date(), now=now,
                               base_url=current_app.config["PUBLIC_BASE_URL"])
    _print_logins()
    if logins:
        click.echo(f"Loaded demo data ({len(logins)} sign-ins).")


def _print_logins() -> None:
    from portal.demo_data import DEMO_PASSWORD

    click.echo(f"\nDemo sign-ins (password for all: {DEMO_PASSWORD})")
    for who, login in (
        ("Patient, Tier 1", "07700 900001"),
        ("Patient, Tier 2, Whittington team", "07700 900002"),
        ("Patient, Tier 2, Haringey team", "07700 900003"),
        ("Patient, Tier 1, in a running group", "07700 900184"),
        ("Patient, Tier 2, in a running programme", "07700 900006"),
        ("Reception", "reception@demo.portal.nhs.uk"),
        ("Facilitator", "facilitator@demo.portal.nhs.uk"),
        ("Clinician (1:1 clinics)", "clinician@demo.portal.nhs.uk"),
        ("Admin", "admin@demo.portal.nhs.uk"),
    ):
        click.echo(f"  {who:<40} {login}")
    base_url = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    click.echo(f"Texts the portal sends appear at {base_url}/dev/texts\n")


@main.command("import-triage")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-invite", is_flag=True,
              help="Do not text new patients a link to set up their account (staff can send it from the record).")
def import_triage(file: Path, no_invite: bool) -> None:
    """Import triaged patients from the SPOA export FILE (CSV; columns in README.md).

    Each row is checked as the registration form checks it and saved in its own transaction. Rows are
    matched by NHS number, so importing the same file again changes nothing.
    """
    from portal.dates import london_today
    from portal.db import utcnow
    from portal.patients.triage_import import ExportUnusable, import_rows, read_export

    try:
        rows = read_export(file)
    except ExportUnusable as problem:
        raise click.ClickException(str(problem)) from None
    now = utcnow()
    with click.progressbar(rows, label=f"Importing {len(rows)} rows", show_pos=True) as bar:
        report = import_rows(
            current_app.extensions["db"], current_app.extensions["domain"], bar,
            base_url=current_app.config["PUBLIC_BASE_URL"], now=now, today=london_today(now),
            allow_drama_range=not current_app.config["PRODUCTION"], invite=not no_invite,
        )
    for rejection in report.rejected:
        for reason in rejection.reasons:
            click.echo(f"Line {rejection.line}: {reason}", err=True)
    for left in report.still_booked:
        click.echo(f"Line {left.line}: {left.explain()}")
    click.echo(f"Summary: {report.summary()}.")
    if report.invited:
        click.echo(f"{report.invited} invitation texts queued; the scheduler sends them.")


@main.command("invite-staff")
@click.argument("email")
@click.option("--name", required=True, help="Their full name, as staff pages show it.")
@click.option("--role", required=True, type=click.Choice(["facilitator", "clinician", "reception", "admin"]))
def invite_staff(email: str, name: str, role: str) -> None:
    """Create a staff account and print its one-time set-up link: the first admin of a new deployment.
    Admins invite everyone else at Staff accounts (/staff/admin/staff-accounts)."""
    from email_validator import EmailNotValidError, validate_email

    from portal.audit.services import SYSTEM, record
    from portal.auth import staff_accounts
    from portal.auth.models import Role
    from portal.db import utcnow

    try:
        email = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as problem:
        raise click.ClickException(f"{email!r} is not an email address: {problem}") from None
    with current_app.extensions["db"].transaction() as session:
        try:
            issued = staff_accounts.invite_staff(
                session, email=email, display_name=name, role=Role(role), invited_by=None,
                valid_days=current_app.extensions["domain"].policy.invitations.link_valid_days, now=utcnow())
        except staff_accounts.EmailInUse:
            raise click.ClickException(f"There is already an account with the email address {email}") from None
        record(session, SYSTEM, "staff_invited", detail=f"account {issued.user.id}: {role}")
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    click.echo(f"Send this set-up link to {name}; it works once, until {issued.expires_at:%Y-%m-%d %H:%M} UTC:")
    click.echo(f"{base}/activate/staff/{issued.token}")


@main.command("synth")
@click.option("--patients", type=click.IntRange(1, 1_000_000), required=True, help="How many patients to make.")
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed makes the same service.")
@click.option("--force", is_flag=True,
              help="Add to a database that already holds test-range patients (never to one with real-looking ones).")
def synth(patients: int, seed: int, force: bool) -> None:
    """Fill the database with a synthetic service of PATIENTS patients over 18 months (for reports and benches).

    Refused in production config, on a database with a patient whose NHS number or mobile looks real, and,
    without --force, on a database with any patients."""
    import time

    from portal import synth as synthetic

    if current_app.config["PRODUCTION"]:
        raise click.ClickException("synthetic data is never generated in production (PORTAL_ENV=production)")
    started = time.monotonic()
    try:
        with current_app.extensions["db"].transaction() as session:
            summary = synthetic.generate(session, patients, seed, domain=current_app.extensions["domain"],
                                         force=force)
    except synthetic.SynthRefused as refusal:
        raise click.ClickException(str(refusal)) from None
    click.echo(f"Generated in {time.monotonic() - started:.1f}s: {summary}.")


@main.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--no-scheduler", is_flag=True, help="Do not run the scheduler inside the server.")
def serve(host: str, port: int, no_scheduler: bool) -> None:
    """Development server, with the scheduler in-process (under the same lease as `portal scheduler`)."""
    from werkzeug.serving import run_simple

    from portal.scheduler import start_in_process

    app = current_app._get_current_object()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # ten lines per text otherwise
    leased = None if no_scheduler else start_in_process(dict(app.config), app.extensions["domain"])
    try:
        click.echo(f"Serving the portal on http://{host}:{port}")
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    finally:
        if leased:
            leased.shutdown()


@main.command("scheduler")
def scheduler() -> None:
    """Run the scheduled jobs (SMS dispatch and the rest) in this process until stopped."""
    from portal.scheduler import run_blocking

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run is noise
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # ten lines per text otherwise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_blocking(dict(current_app.config), current_app.extensions["domain"])


@main.command("fake-twilio")
@click.option("--port", default=8765, type=int, show_default=True, help="Port on 127.0.0.1 to listen on.")
@click.option("--inbound-url", default=None,
              help="Where replies typed on the fake's page go (default: PUBLIC_BASE_URL/webhooks/twilio/inbound).")
@click.option("--delay", default=1.0, type=float, show_default=True,
              help="Seconds between one status callback and the next (queued, sent, delivered).")
def fake_twilio(port: int, inbound_url: str | None, delay: float) -> None:
    """Serve a fake Twilio on 127.0.0.1 for a local demo: it takes texts, posts signed status callbacks, and has
    a page where you reply as a patient. Nothing leaves this machine."""
    import threading

    from portal.messaging.fake_twilio import FAKE_NUMBER, TEST_ACCOUNT_SID, FakeTwilio
    from portal.messaging.receipts import INBOUND_WEBHOOK_PATH

    config = current_app.config
    account_sid = config.get("TWILIO_ACCOUNT_SID") or TEST_ACCOUNT_SID
    auth_token = config.get("TWILIO_AUTH_TOKEN") or "fake-twilio-demo-token"
    public = config["PUBLIC_BASE_URL"].rstrip("/")
    fake = FakeTwilio(account_sid=account_sid, auth_token=auth_token, callback_delay=delay,
                      inbound_url=inbound_url or public + INBOUND_WEBHOOK_PATH)
    try:
        fake.start(port=port)
    except OSError as problem:
        raise click.ClickException(f"cannot listen on 127.0.0.1:{port}: {problem}") from None
    click.echo(f"Fake Twilio listening on {fake.base_url} (its page: {fake.base_url}/)")
    click.echo("Point the portal at it: start `make run` (or `portal serve`) in a shell with")
    click.echo(f"  export SMS_BACKEND=twilio TWILIO_API_BASE={fake.base_url} TWILIO_ACCOUNT_SID={account_sid} \\")
    click.echo(f"         TWILIO_AUTH_TOKEN={auth_token} TWILIO_FROM={FAKE_NUMBER} PUBLIC_BASE_URL={public}")
    click.echo(f"Status callbacks go to each text's StatusCallback ({public}/webhooks/twilio/status), signed with")
    click.echo(f"that token; replies typed on the page go to {fake.inbound_url}. Stop with Ctrl-C.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


@click.command("build-assets")
def build_assets() -> None:
    """Fingerprint and precompress the built stylesheet (run after Sass)."""
    from portal.assets import build

    manifest = build()
    click.echo(f"Built assets: {manifest}")


main.add_command(build_assets)
