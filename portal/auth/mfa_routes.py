"""Staff second factor: set up an authenticator app, type its code (or a recovery code). Admins reset a
factor from the staff member's account page (portal/staff/admin.py).

The password step (``auth.sign_in``) hands staff to these pages through ``mfa_pending``; only once the
second step succeeds does ``_start_session`` sign them in. Patients never reach them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import segno
from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_login import current_user, logout_user

from portal.audit import services as audit_services
from portal.audit.web import audit, current_actor
from portal.auth import mfa, mfa_pending
from portal.auth.mfa_forms import AppCodeForm, RecoveryCodeForm
from portal.auth.models import User
from portal.auth.routes import _start_session, lock_detail
from portal.db import utcnow
from portal.extensions import db_session, limiter
from portal.forms import PortalForm

bp = Blueprint("mfa", __name__)


@bp.before_app_request
def _staff_sessions_need_the_second_step():
    """Defence in depth: a staff session that did not come through the second step (another path that
    starts sessions, or one from before this check) ends at once, and the person signs in again."""
    if current_user.is_authenticated and current_user.is_staff and not mfa_pending.proven(current_user):
        logout_user()
        session.clear()
        flash("Sign in to continue.", "info")
        return redirect(url_for("auth.sign_in"))
    return None


def _audit_as(user: User, action: str, detail: str = "") -> None:
    """Audit a step of a pending sign-in. Nobody is signed in yet, but the password proved who it is."""
    actor = dataclasses.replace(current_actor(), user_id=user.id, role=user.role)
    audit_services.record(db_session(), actor, action, detail=detail)


def _qr_code(uri: str) -> str:
    """The otpauth address as a QR code: an SVG data URI, drawn here (no request leaves the site)."""
    return segno.make(uri, error="m", micro=False).svg_data_uri(scale=5, border=4, dark="#000", light="#fff")


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _back_to_sign_in(message: str = "Sign in to continue."):
    mfa_pending.forget()
    flash(message, "info")
    return redirect(url_for("auth.sign_in"))


def _ended(pending: mfa_pending.Pending, ended: mfa.PendingSignInEnded):
    if ended.reason == "too_many_attempts":
        _audit_as(pending.user, "mfa_sign_in_ended", "too many wrong codes")
        if ended.locked_for is not None:
            _audit_as(pending.user, "account_locked", lock_detail(
                pending.user, ended.locked_for, after="failed sign-ins, the last ended by wrong codes"))
            # They proved the password just now: telling them of the lock tells nobody else anything.
            minutes = max(1, int(ended.locked_for.total_seconds() // 60))
            return _back_to_sign_in("You entered a wrong code too many times, so we did not sign you in. Wait "
                                    f"{'a minute' if minutes == 1 else f'{minutes} minutes'}, then sign in again.")
        return _back_to_sign_in("You entered a wrong code too many times, so we did not sign you in. "
                                "Sign in again to have another go.")
    if ended.reason == "expired":
        _audit_as(pending.user, "mfa_sign_in_ended", "took too long")
        return _back_to_sign_in("You took too long, so we did not sign you in. Sign in again.")
    return _back_to_sign_in()


def _pending_sign_in():
    """The half-finished sign-in and its factor, or (None, None, the response that ends the step)."""
    if current_user.is_authenticated:
        return None, None, redirect(url_for("patients.home"))
    pending = mfa_pending.load()
    if pending is None:
        return None, None, _back_to_sign_in()
    try:
        factor = mfa.pending_factor(db_session(), pending.user, pending.token, now=utcnow())
    except mfa.PendingSignInEnded as ended:
        return None, None, _ended(pending, ended)
    return pending, factor, None


def _complete_sign_in(pending: mfa_pending.Pending) -> None:
    """The second factor is proven: start the session (audit its events after this)."""
    _start_session(pending.user)
    mfa_pending.mark_proven(pending.user)


@bp.route("/sign-in/set-up-app", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def enrol():
    pending, factor, ended_response = _pending_sign_in()
    if ended_response is not None:
        return ended_response
    s = db_session()
    if factor.confirmed:
        return redirect(url_for("mfa.verify"))
    form = AppCodeForm()
    if form.validate_on_submit():
        try:
            codes = mfa.confirm_enrolment(s, pending.user, pending.token, form.code.data, now=utcnow())
        except mfa.PendingSignInEnded as ended:
            return _ended(pending, ended)
        except mfa.CodeRejected:
            form.code.errors.append(
                "The code is not right. Check that your phone's clock is right, then enter the code your app shows now"
            )
        else:
            _complete_sign_in(pending)
            audit("mfa_enrolled")
            audit("sign_in")
            # Shown in this response and never again: only their hashes are stored.
            return render_template("auth/mfa/recovery_codes.html", codes=codes, next_path=pending.next_path)
    return render_template(
        "auth/mfa/enrol.html",
        form=form,
        qr_code=_qr_code(mfa.provisioning_uri(factor, pending.user)),
        secret=_grouped(factor.secret),
    )


def _tries_left(count: int | None) -> str:
    if count is None:
        return ""
    return f" You have {count} more {'try' if count == 1 else 'tries'}."


def _second_step(form: PortalForm, check: Callable[..., mfa.Verified], template: str, wrong: str):
    pending, factor, ended_response = _pending_sign_in()
    if ended_response is not None:
        return ended_response
    s = db_session()
    if not factor.confirmed:
        return redirect(url_for("mfa.enrol"))
    if form.validate_on_submit():
        try:
            verified = check(s, pending.user, pending.token, form.code.data, now=utcnow())
        except mfa.CodeRejected as rejected:
            _audit_as(pending.user, "mfa_failed", "code already used" if rejected.reused else wrong)
            if rejected.reused:
                message = "You have used this code already. Wait for your app to show a new code, then enter it."
            else:
                message = "The code is not right. Check it and try again."
            form.code.errors.append(message + _tries_left(rejected.attempts_left))
        except mfa.PendingSignInEnded as ended:
            if ended.reason == "too_many_attempts":
                _audit_as(pending.user, "mfa_failed", wrong)
            return _ended(pending, ended)
        else:
            _complete_sign_in(pending)
            if verified.method == "recovery code":
                audit("mfa_recovery_code_used", detail=f"{verified.recovery_codes_left} recovery codes left")
                flash(f"You used a recovery code. You have {verified.recovery_codes_left} left. If your "
                      "authenticator app is lost, ask an admin to reset your second factor.", "info")
            else:
                audit("mfa_verified", detail="authenticator app")
            audit("sign_in")
            return redirect(pending.next_path)
    return render_template(template, form=form)


@bp.route("/sign-in/code", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def verify():
    return _second_step(AppCodeForm(), mfa.verify_app_code, "auth/mfa/verify.html", "wrong app code")


@bp.route("/sign-in/recovery-code", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def recovery_code():
    return _second_step(RecoveryCodeForm(), mfa.use_recovery_code, "auth/mfa/recovery_code.html",
                        "wrong recovery code")
