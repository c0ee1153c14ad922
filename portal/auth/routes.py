"""Sign in, sign out and account activation."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from portal.audit.web import audit
from portal.auth import services
from portal.auth.forms import ActivateForm, SignInForm, SignOutForm
from portal.db import utcnow
from portal.extensions import db_session, limiter

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never another host, never a scheme-relative //host."""
    if not target:
        return url_for("patients.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("patients.home")
    return target


def _start_session(user) -> None:
    # A fresh session on every sign-in, so nothing from before it (a planted id) carries over.
    session.clear()
    login_user(user, remember=False)


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("patients.home"))
    form = SignInForm()
    if form.validate_on_submit():
        user = services.authenticate(
            db_session(),
            form.identifier.data,
            form.password.data,
            now=utcnow(),
            allow_drama_range=not current_app.config["PRODUCTION"],
        )
        if user is not None:
            _start_session(user)
            audit("sign_in", patient_id=user.patient_id)
            return redirect(_safe_next(request.args.get("next")))
        # The form answers 200, so the request's transaction commits and this event stands.
        audit("sign_in_failed")
        # The same words whether the account exists or not.
        form.password.errors.append("Your email address, mobile number or password is not right")
    return render_template("auth/sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    if SignOutForm().validate_on_submit() and current_user.is_authenticated:
        audit("sign_out", patient_id=current_user.patient_id)
        logout_user()
        session.clear()
    flash("You have signed out.", "success")
    return redirect(url_for("auth.sign_in"))


@bp.route("/activate/<token>", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def activate(token: str):
    s = db_session()
    try:
        services.find_usable_invitation(s, token, now=utcnow())
    except services.InvitationUnusable:
        return render_template("auth/activation_unusable.html"), 410
    form = ActivateForm()
    if form.validate_on_submit():
        problem = services.password_problem(form.password.data)
        if problem:
            form.password.errors.append(problem)
        else:
            try:
                user = services.activate(
                    s, token, form.date_of_birth.data, form.password.data, now=utcnow()
                )
            except services.WrongDateOfBirth as wrong:
                audit("activation_failed", patient_id=wrong.patient_id, detail="date of birth did not match")
                form.date_of_birth.errors.append(
                    "The date of birth does not match our records. Check it and try again"
                )
                form.date_of_birth.bad_parts = {"day", "month", "year"}
            except services.InvitationUnusable:
                return render_template("auth/activation_unusable.html"), 410
            else:
                _start_session(user)
                audit("account_activated", patient_id=user.patient_id)
                flash("Your account is ready. You are signed in.", "success")
                return redirect(url_for("patients.home"))
    return render_template("auth/activate.html", form=form)
