"""Sign in, sign out, account activation, the account page (change password, sign out everywhere) and
forgotten passwords."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.urls import iri_to_uri

from portal.audit.web import audit
from portal.auth import mfa_pending, services, sessions, staff_accounts
from portal.auth.forms import (
    ActivateForm,
    ChangePasswordForm,
    ForgotPasswordForm,
    NewPasswordForm,
    ResetCodeForm,
    SignInForm,
    SignOutEverywhereForm,
    SignOutForm,
)
from portal.db import utcnow
from portal.extensions import csrf, db_session, limiter

bp = Blueprint("auth", __name__)

# The one answer to a refused sign-in: unknown account, wrong password and locked account alike.
SIGN_IN_REFUSED = "Your email address, mobile number or password is not right"


# No address of the portal comes near this. Staff carry ``next`` through the second step in the session cookie,
# which browsers silently drop past 4 KB: a longer one would send them back to sign in, again and again.
NEXT_MAX_LENGTH = 1000


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host, never a scheme-relative //host (nor /\\host, which browsers
    read as one), nothing a header cannot carry (a line break, a space, a control or invisible character) and
    nothing too long for the session cookie. Letters beyond ASCII (a search for "Zoë") are kept, percent-encoded
    as UTF-8, so the Location header stays ASCII and no look-alike of a slash can turn into one."""
    if (not target or len(target) > NEXT_MAX_LENGTH or not target.isprintable() or " " in target or "\\" in target
            or not target.startswith("/") or target.startswith("//")):
        return url_for("patients.home")
    target = iri_to_uri(target)
    if len(target) > NEXT_MAX_LENGTH:  # again: encoding makes each such letter 6 to 12 characters
        return url_for("patients.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("patients.home")
    return target


def _start_session(user) -> None:
    # A fresh session on every sign-in, so nothing from before it (a planted id) carries over.
    session.clear()
    login_user(user, remember=False)
    sessions.mark_started(utcnow())


def _allow_drama_range() -> bool:
    return not current_app.config["PRODUCTION"]


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("patients.home"))
    form = SignInForm()
    if form.validate_on_submit():
        attempt = services.attempt_sign_in(
            db_session(),
            form.identifier.data,
            form.password.data,
            now=utcnow(),
            allow_drama_range=_allow_drama_range(),
        )
        user = attempt.user
        if user is not None:
            if user.is_staff:
                # Staff prove a second factor before any session starts (portal/auth/mfa_routes.py).
                return redirect(mfa_pending.begin(user, next_path=_safe_next(request.args.get("next"))))
            _start_session(user)
            audit("sign_in", patient_id=user.patient_id)
            return redirect(_safe_next(request.args.get("next")))
        # The form answers 200, so the request's transaction commits: the events and the count stand.
        _audit_refused_sign_in(attempt)
        form.password.errors.append(SIGN_IN_REFUSED)
    return render_template("auth/sign_in.html", form=form)


def _audit_refused_sign_in(attempt: services.SignInAttempt) -> None:
    account = attempt.account
    if account is None:
        audit("sign_in_failed", detail=attempt.outcome.value)
        return
    audit("sign_in_failed", patient_id=account.patient_id, detail=f"account {account.id}: {attempt.outcome.value}")
    if attempt.locked_for is not None:
        _audit_lock(account, attempt.locked_for)


def _audit_lock(account, locked_for) -> None:
    audit("account_locked", patient_id=account.patient_id, detail=lock_detail(account, locked_for))


def lock_detail(account, locked_for, *, after: str = "wrong passwords") -> str:
    return (f"account {account.id}: locked for {int(locked_for.total_seconds() // 60)} min "
            f"after {account.failed_sign_ins} {after}")


@bp.route("/sign-out", methods=["POST"])
@csrf.exempt  # the form checks its own token, so that a refusal can say who is still signed in (below)
def sign_out():
    form = SignOutForm()
    if current_user.is_authenticated and not form.validate_on_submit():
        # The button was on a page from an earlier session of this browser: a tab left open while someone
        # signed out and another person signed in. The "form has expired" page would leave them signed in
        # without saying so: ask again, with a button that works.
        return render_template("auth/sign_out.html", form=form)
    if current_user.is_authenticated:
        audit("sign_out", patient_id=current_user.patient_id)
        sessions.end_this_session(db_session(), utcnow())
    flash("You have signed out.", "success")
    return redirect(url_for("auth.sign_in"))


@bp.route("/activate/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def activate(token: str):
    # Using the link would quietly end the session of whoever is signed in here (a patient, or a receptionist at
    # the desk) and sign the browser in as someone else, without either being told.
    if current_user.is_authenticated:
        return render_template("auth/activation_signed_in.html")
    s = db_session()
    try:
        services.find_usable_invitation(s, token, now=utcnow())
    except services.InvitationUnusable:
        return render_template("auth/activation_unusable.html"), 410
    form = ActivateForm()
    if form.validate_on_submit():
        try:
            user = services.activate(
                s, token, form.date_of_birth.data, form.postcode.data, form.password.data, now=utcnow()
            )
        except services.DetailsDoNotMatch as wrong:
            audit("activation_failed", patient_id=wrong.patient_id, detail="date of birth or postcode did not match")
            # Neither message says which answer was wrong: that would help someone guessing.
            form.date_of_birth.errors.append("Check your date of birth: it or your postcode does not match our records")
            form.date_of_birth.bad_parts = {"day", "month", "year"}
            form.postcode.errors.append("Check your postcode: it or your date of birth does not match our records")
        except services.WeakPassword as weak:
            form.password.errors.append(weak.reason)
        except services.InvitationUnusable:
            return render_template("auth/activation_unusable.html"), 410
        else:
            _start_session(user)
            audit("account_activated", patient_id=user.patient_id)
            flash("Your account is ready. You are signed in.", "success")
            return redirect(url_for("patients.home"))
    return render_template("auth/activate.html", form=form)


@bp.route("/activate/staff/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def staff_set_up(token: str):
    """A staff member's one-time link from an admin (a new account, or a reset second factor): choose a
    password, then set up the app."""
    if current_user.is_authenticated:
        return render_template("auth/staff_set_up_signed_in.html")
    s = db_session()
    try:
        link = staff_accounts.find_usable_link(s, token, now=utcnow())
    except staff_accounts.SetUpLinkUnusable:
        return render_template("auth/staff_set_up_unusable.html"), 410
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            user = staff_accounts.complete_set_up(s, token, form.password.data, now=utcnow())
        except services.WeakPassword as weak:
            form.password.errors.append(weak.reason)
        else:
            audit("staff_account_set_up", detail=f"account {user.id}")
            flash("Your password is saved. Now set up an authenticator app: you will use it every time you "
                  "sign in.", "info")
            # The password was proven just now: straight on to the second step, as after signing in.
            return redirect(mfa_pending.begin(user, next_path=url_for("staff.dashboard")))
    return render_template("auth/staff_set_up.html", form=form, user=link.user)


# The account page: change password, sign out everywhere.

@bp.route("/account")
@login_required
def account():
    return render_template("auth/account.html", sign_out_everywhere_form=SignOutEverywhereForm())


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def sign_out_everywhere():
    if SignOutEverywhereForm().validate_on_submit():
        user = current_user._get_current_object()
        services.sign_out_everywhere(db_session(), user)
        audit("signed_out_everywhere", patient_id=user.patient_id)
        logout_user()
        session.clear()
        flash("You have signed out on all your devices.", "success")
    return redirect(url_for("auth.sign_in"))


def _keep_session(user) -> None:
    # The session version moved on with the password, ending the other sessions: carry this one over to
    # the new version. Everything else in it stays, the sign-in time too (the 12-hour limit still counts).
    login_user(user, remember=False)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
@limiter.limit("10 per minute", methods=["POST"])
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            services.change_password(
                db_session(), user, form.current_password.data, form.password.data, now=utcnow()
            )
        except services.WrongPassword as wrong:
            audit("password_change_failed", patient_id=user.patient_id, detail=f"account {user.id}: wrong password")
            if wrong.locked_for is not None:
                _audit_lock(user, wrong.locked_for)
            form.current_password.errors.append(
                "You have typed a wrong password too many times. Wait a few minutes and try again"
                if wrong.locked else "Your current password is not right"
            )
        except services.WeakPassword as weak:
            form.password.errors.append(weak.reason)
        except services.SessionEnded:
            logout_user()
            session.clear()
            flash("You were signed out on all your devices while changing your password. "
                  "Sign in again to change it.", "info")
            return redirect(url_for("auth.sign_in"))
        else:
            _keep_session(user)
            audit("password_changed", patient_id=user.patient_id)
            flash("Your password has been changed. You have been signed out on your other devices.", "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/change_password.html", form=form)


# Forgotten password: what was typed -> a code by text -> a new password -> signed in.

# In the session: what the person typed (never whether it matched an account: the cookie is readable),
# then, once the code is right, which account may set a new password and since when.
RESET_ASKED = "reset_asked_for"
RESET_PROVEN = "reset_proven"
RESET_PROVEN_FOR = 600  # seconds to choose the new password after the code was accepted
CODE_REFUSED = "The code is not right, or it has expired. Check the text, or ask for a new code"


def _pad_to(seconds: float, started: float) -> None:
    # Asking about an account that exists writes a code and a text; asking about one that does not
    # writes nothing. Answer both after the same time, so the time does not tell them apart.
    remaining = seconds - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit("5 per minute;20 per hour", methods=["POST"])
def forgot_password():
    if current_user.is_authenticated:
        return redirect(url_for("auth.change_password"))
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        started = time.monotonic()
        typed = form.identifier.data.strip()
        account = services.request_password_reset(
            db_session(), typed, now=utcnow(), allow_drama_range=_allow_drama_range()
        )
        audit("password_reset_requested", patient_id=account.patient_id if account else None,
              detail=f"account {account.id}" if account else "no matching account")
        session.pop(RESET_PROVEN, None)
        session[RESET_ASKED] = typed
        _pad_to(current_app.config.get("PASSWORD_RESET_ANSWER_SECONDS", 0.5), started)
        return redirect(url_for("auth.reset_code"))
    return render_template("auth/forgot_password.html", form=form)


@bp.route("/forgot-password/code", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def reset_code():
    typed = session.get(RESET_ASKED)
    if current_user.is_authenticated or not isinstance(typed, str):
        return redirect(url_for("auth.forgot_password"))
    form = ResetCodeForm()
    if form.validate_on_submit():
        try:
            account = services.check_reset_code(
                db_session(), typed, form.code.data, now=utcnow(), allow_drama_range=_allow_drama_range()
            )
        except services.ResetCodeRejected as rejected:
            who = rejected.account
            audit("password_reset_code_rejected", patient_id=who.patient_id if who else None,
                  detail=f"account {who.id}" if who else "no matching account")
            form.code.errors.append(CODE_REFUSED)
        else:
            audit("password_reset_code_accepted", patient_id=account.patient_id, detail=f"account {account.id}")
            session.pop(RESET_ASKED, None)
            session[RESET_PROVEN] = {"account": account.get_id(), "at": int(time.time())}
            return redirect(url_for("auth.reset_new_password"))
    return render_template("auth/reset_code.html", form=form)


def _proven_account():
    proven = session.get(RESET_PROVEN)
    if not isinstance(proven, dict) or not isinstance(proven.get("at"), int):
        return None
    if time.time() - proven["at"] > RESET_PROVEN_FOR:
        return None
    # By the id and session version: a password changed since (a new session version) ends this too.
    return services.account_for_id(db_session(), str(proven.get("account")))


@bp.route("/forgot-password/new-password", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def reset_new_password():
    account = None if current_user.is_authenticated else _proven_account()
    if account is None:
        session.pop(RESET_PROVEN, None)
        flash("Ask for a new code to reset your password.", "info")
        return redirect(url_for("auth.forgot_password"))
    form = NewPasswordForm()
    if form.validate_on_submit():
        try:
            services.reset_password(db_session(), account, form.password.data, now=utcnow())
        except services.WeakPassword as weak:
            form.password.errors.append(weak.reason)
        else:
            _start_session(account)
            audit("password_reset_completed", patient_id=account.patient_id)
            flash("Your password has been changed. You are signed in.", "success")
            return redirect(url_for("patients.home"))
    return render_template("auth/reset_new_password.html", form=form)
