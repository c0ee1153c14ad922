"""Admin pages: the hub of admin tasks, venues, staff accounts and the configuration (read only).

Courses, clinics and the content review list have their own pages (staff/courses.py,
appointments/staff_routes.py, staff/selfcare.py); the hub links to them.
"""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.appointments import availability
from portal.audit.web import audit
from portal.auth import staff_accounts
from portal.auth.access import roles_required
from portal.auth.models import Role, User
from portal.booking import venues
from portal.booking.models import Venue
from portal.dates import london_today
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.staff.admin_forms import ROLE_HINTS, ChangeRoleForm, InviteStaffForm, SetUpLinkForm, VenueForm
from portal.staff.forms import ActionForm

bp = Blueprint("staff_admin", __name__, url_prefix="/staff/admin")
admin_required = roles_required(Role.ADMIN)


@bp.route("")
@read_only
@admin_required
def hub():
    return render_template("staff/admin/hub.html")


# Venues

@bp.route("/venues")
@read_only
@admin_required
def venue_list():
    return render_template("staff/admin/venues.html", rows=venues.venues_for_admin(db_session(), now=utcnow()))


@bp.route("/venues/new", methods=["GET", "POST"])
@admin_required
def new_venue():
    form = VenueForm(data=None if request.method == "POST" else {"is_online": "no"})
    if form.validate_on_submit():
        try:
            venue = venues.create_venue(db_session(), **form.values)
        except venues.VenueNameTaken as taken:
            form.name.errors.append(str(taken))
        else:
            audit("venue_created", detail=f"venue {venue.id}")
            flash(f"{venue.name} is added. Choose it when you create a cohort or a weekly clinic.", "success")
            return redirect(url_for("staff_admin.venue_list"))
    return render_template("staff/admin/venue_form.html", form=form, venue=None, use=None), \
        400 if form.is_submitted() else 200


def _venue_or_404(venue_id: int) -> Venue:
    venue = db_session().get(Venue, venue_id)
    if venue is None:
        abort(404)
    return venue


@bp.route("/venues/<int:venue_id>", methods=["GET", "POST"])
@admin_required
def edit_venue(venue_id: int):
    s = db_session()
    venue = _venue_or_404(venue_id)
    now = utcnow()
    form = VenueForm(data=None if request.method == "POST" else {
        "name": venue.name, "short_name": venue.short_name, "address": venue.address,
        "access_notes": venue.access_notes, "is_online": "yes" if venue.is_online else "no",
    })
    if form.validate_on_submit():
        try:
            changed = venues.update_venue(s, venue, now=now, **form.values)
        except venues.VenueInUse as in_use:
            form.is_online.errors.append(
                f"You cannot change whether this venue is online while {in_use.use.uses_it()}. "
                "Add a new venue instead")
        except venues.VenueNameTaken as taken:
            form.name.errors.append(str(taken))
        else:
            if changed:
                audit("venue_updated", detail=f"venue {venue.id}: changed {', '.join(changed)}")
                flash(f"{venue.name} is updated. The change shows everywhere the venue does, in texts too.", "success")
            else:
                flash(f"Nothing was changed for {venue.name}.", "info")
            return redirect(url_for("staff_admin.venue_list"))
    return render_template("staff/admin/venue_form.html", form=form, venue=venue,
                           use=venues.venue_use(s, venue, now=now), delete_form=ActionForm()), \
        400 if form.is_submitted() else 200


@bp.route("/venues/<int:venue_id>/delete", methods=["POST"])
@admin_required
def delete_venue(venue_id: int):
    venue = _venue_or_404(venue_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    name = venue.name
    try:
        venues.delete_venue(db_session(), venue, now=utcnow())
    except venues.VenueInUse as in_use:
        flash(f"You cannot delete {name}: {in_use.use.uses_it()}. You can still change its details.", "info")
        return redirect(url_for("staff_admin.edit_venue", venue_id=venue_id))
    audit("venue_deleted", detail=f"venue {venue_id}")
    flash(f"{name} is deleted.", "success")
    return redirect(url_for("staff_admin.venue_list"))


# Staff accounts

def _valid_days() -> int:
    return domain().policy.invitations.link_valid_days


def _set_up_link(issued: staff_accounts.IssuedLink, *, why: Literal["invited", "reset", "new link"]):
    """Shown in this response only: the token is not stored, so the link cannot be shown again."""
    link = f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/activate/staff/{issued.token}"
    # After a reset the link replaces a password and an app: it goes to the person face to face or by phone,
    # never just to the email address, which whoever asked for the reset may be reading too.
    after_reset = why == "reset" or staff_accounts.account_was_reset(issued.user)
    return render_template("staff/admin/set_up_link.html", user=issued.user, link=link,
                           expires_at=issued.expires_at, why=why, after_reset=after_reset)


@bp.route("/staff-accounts")
@read_only
@admin_required
def account_list():
    return render_template("staff/admin/accounts.html", accounts=staff_accounts.staff_list(db_session()))


@bp.route("/staff-accounts/invite", methods=["GET", "POST"])
@admin_required
def invite():
    form = InviteStaffForm()
    if form.validate_on_submit():
        try:
            issued = staff_accounts.invite_staff(
                db_session(), email=form.email.data, display_name=form.display_name.data,
                role=Role(form.role.data), invited_by=current_user, valid_days=_valid_days(), now=utcnow())
        except staff_accounts.EmailInUse:
            form.email.errors.append("There is already an account with this email address")
        else:
            audit("staff_invited", detail=f"account {issued.user.id}: {issued.user.role}")
            return _set_up_link(issued, why="invited")
    return render_template("staff/admin/invite.html", form=form, role_hints=ROLE_HINTS), \
        400 if form.is_submitted() else 200


def _account_page(summary: staff_accounts.AccountSummary, *, role_form: ChangeRoleForm | None = None,
                  action_error: str | None = None, status: int = 200):
    s = db_session()
    user = summary.user
    role_form = role_form or ChangeRoleForm(data={"role": user.role})
    return render_template(
        "staff/admin/account.html", account=summary, user=user, form=role_form, role_hints=ROLE_HINTS,
        action_form=ActionForm(), action_error=action_error, is_self=user.id == current_user.id,
        set_up=staff_accounts.is_set_up(user), link=staff_accounts.latest_link(s, user), now=utcnow(),
    ), status


def _summary_or_404(user_id: int) -> staff_accounts.AccountSummary:
    summary = staff_accounts.account_summary(db_session(), user_id)
    if summary is None:
        abort(404)
    return summary


def _staff_or_404(user_id: int) -> User:
    user = staff_accounts.find_staff(db_session(), user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/staff-accounts/<int:user_id>")
@read_only
@admin_required
def account(user_id: int):
    return _account_page(_summary_or_404(user_id))


@bp.route("/staff-accounts/<int:user_id>/role", methods=["POST"])
@admin_required
def change_role(user_id: int):
    user = _staff_or_404(user_id)
    form = ChangeRoleForm()
    if form.validate_on_submit():
        clinics = availability.running_clinics(db_session(), user.id, today=london_today(utcnow()))
        try:
            if clinics and form.role.data not in availability.CLINICIAN_ROLES:
                raise staff_accounts.NotAllowed(
                    f"{user.display_name} runs {clinics} weekly clinic{'s' if clinics != 1 else ''}. "
                    "Give them to another clinician, or end them, first")
            old = staff_accounts.change_role(db_session(), user, Role(form.role.data), by=current_user)
        except staff_accounts.NotAllowed as refused:
            form.role.errors.append(str(refused))
        else:
            if old != user.role:
                audit("staff_role_changed", detail=f"account {user.id}: {old} to {user.role}")
                flash(f"{user.display_name} is now {_a(user.role)}.", "success")
            return redirect(url_for("staff_admin.account", user_id=user.id))
    return _account_page(_summary_or_404(user_id), role_form=form, status=400)


def _a(role: str) -> str:
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


def _action(user_id: int, act, done: str, action: str, detail: str = "account {id}"):
    """A button on the account page: check its CSRF token, make the change, audit it, say so."""
    user = _staff_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        act(user)
    except staff_accounts.NotAllowed as refused:
        return _account_page(_summary_or_404(user_id), action_error=str(refused), status=409)
    audit(action, detail=detail.format(id=user.id))
    flash(done.format(name=user.display_name), "success")
    return redirect(url_for("staff_admin.account", user_id=user.id))


@bp.route("/staff-accounts/<int:user_id>/deactivate", methods=["POST"])
@admin_required
def deactivate(user_id: int):
    return _action(
        user_id, lambda user: staff_accounts.deactivate(db_session(), user, by=current_user, now=utcnow()),
        "{name} can no longer sign in, and every session they had open has ended.", "staff_deactivated")


@bp.route("/staff-accounts/<int:user_id>/reactivate", methods=["POST"])
@admin_required
def reactivate(user_id: int):
    return _action(
        user_id, lambda user: staff_accounts.reactivate(db_session(), user, by=current_user),
        "{name} can sign in again, with their old password and authenticator app.", "staff_reactivated")


def _issue_link(user_id: int, issue, why: Literal["reset", "new link"]):
    """A button that gives the account a set-up link: check its form, call ``issue(user, newest_seen)`` (a
    staff_accounts service returning the IssuedLink), audit it and show the link once. The same form sent
    again makes no link: it is answered with the one made already."""
    user = _staff_or_404(user_id)
    form = SetUpLinkForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        issued = issue(user, form.newest_seen())
    except staff_accounts.NotAllowed as refused:
        return _account_page(_summary_or_404(user_id), action_error=str(refused), status=409)
    except staff_accounts.LinkAlreadyMade as made:
        return render_template("staff/admin/set_up_link_made.html", user=user, link=made.link, now=utcnow(),
                               set_up=staff_accounts.is_set_up(user)), 409
    if why == "reset":
        audit("mfa_reset", detail=f"user {user.id}")
    audit("staff_set_up_link_issued", detail=f"account {user.id}")
    return _set_up_link(issued, why=why)


@bp.route("/staff-accounts/<int:user_id>/reset-second-factor", methods=["POST"])
@admin_required
def reset_second_factor(user_id: int):
    return _issue_link(user_id, lambda user, newest_seen: staff_accounts.reset_second_factor(
        db_session(), user, by=current_user, valid_days=_valid_days(), now=utcnow(), newest_seen=newest_seen),
        "reset")


@bp.route("/staff-accounts/<int:user_id>/set-up-link", methods=["POST"])
@admin_required
def new_set_up_link(user_id: int):
    return _issue_link(user_id, lambda user, newest_seen: staff_accounts.new_set_up_link(
        db_session(), user, issued_by=current_user, valid_days=_valid_days(), now=utcnow(), newest_seen=newest_seen),
        "new link")


# Configuration

@bp.route("/configuration")
@read_only
@admin_required
def configuration():
    return render_template("staff/admin/configuration.html", config=domain())
