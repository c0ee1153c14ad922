"""The patient's weekly self-management reading: every week of their track, and each item.

Everything is loaded through the signed-in patient (``current_patient``): the address names a track and a
week, never a record id, and a week the patient may not read answers 404 (or, for a later week of their
own track, a page saying when it opens, also with status 404).

The item page is a read-only request (no SQLite write lock for a page view). The first time a patient opens
an item it records that in a short transaction of its own: once per item, so a page read again and again
(the usual case) writes nothing.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required
from portal.db import utcnow
from portal.extensions import database, db_session, domain, read_only
from portal.selfcare import services
from portal.selfcare.forms import MarkDoneForm
from portal.selfcare.release import COURSE_TRACKS, TRACK_LABELS

bp = Blueprint("selfcare", __name__)


def _mine(now) -> services.PatientReading:
    return services.reading_for_patient(db_session(), domain(), current_patient(),
                                        activated_at=current_user.created_at, now=now)


def _course_name(track: str | None) -> str | None:
    key = next((k for k, t in COURSE_TRACKS.items() if t == track), None)
    service = domain().catalogue.get(key) if key else None
    return service.name if service else None


@bp.route("/self-care")
@read_only
@patient_required
def week_list():
    mine = _mine(utcnow())
    placement = mine.placement
    return render_template(
        "selfcare/weeks.html",
        mine=mine,
        weeks=mine.weeks(),
        earlier=mine.earlier(),
        course_name=_course_name(mine.track),
        upcoming=placement.upcoming if placement else None,
        upcoming_name=_course_name(placement.upcoming.track) if placement and placement.upcoming else None,
        track_labels=TRACK_LABELS,
    )


@bp.route("/self-care/<track>/<slug>")
@read_only
@patient_required
def item(track: str, slug: str):
    now = utcnow()
    mine = _mine(now)
    try:
        entry = services.item_for_patient(mine, track, slug)
    except services.ItemNotOpenYet as later:
        return render_template("selfcare/not_open.html", opening=later.opening, reading=later.reading), 404
    except services.ItemNotFound:
        abort(404)
    if entry.opened_at is None:
        with database().transaction() as s:
            services.mark_opened(s, current_patient().id, entry.track, entry.week, now=now)
    before, after = mine.neighbours(entry.track, entry.week)
    plan = mine.placement.plan if mine.placement and mine.placement.plan.track == entry.track else None
    return render_template(
        "selfcare/item.html",
        entry=entry,
        weeks_in_track=len(plan.weeks) if plan else services.weeks_in_tracks().get(entry.track, entry.week),
        before=before,
        after=after,
    )


def _item_to_change(track: str, slug: str) -> services.WeekEntry:
    """The patient's open item named in the address, for a POST from its "Mark as ..." button (404 if it is not
    open to them, 400 without the form's token)."""
    try:
        entry = services.item_for_patient(_mine(utcnow()), track, slug)
    except (services.ItemNotOpenYet, services.ItemNotFound):
        abort(404)
    if not MarkDoneForm().validate_on_submit():
        abort(400)
    return entry


@bp.route("/self-care/<track>/<slug>/done", methods=["POST"])
@patient_required
def mark_done(track: str, slug: str):
    entry = _item_to_change(track, slug)
    patient = current_patient()
    if services.mark_done(db_session(), patient.id, entry.track, entry.week, now=utcnow()):
        audit("selfcare_marked_done", patient_id=patient.id, detail=f"{entry.track} week {entry.week}")
        flash(f"Week {entry.week} is marked as done.", "success")
    else:
        flash(f"You had already marked week {entry.week} as done.", "info")
    return redirect(url_for("selfcare.item", track=entry.track, slug=entry.slug))


@bp.route("/self-care/<track>/<slug>/not-done", methods=["POST"])
@patient_required
def mark_not_done(track: str, slug: str):
    entry = _item_to_change(track, slug)
    patient = current_patient()
    if services.mark_not_done(db_session(), patient.id, entry.track, entry.week):
        audit("selfcare_marked_not_done", patient_id=patient.id, detail=f"{entry.track} week {entry.week}")
        flash(f"Week {entry.week} is no longer marked as done.", "success")
    else:
        flash(f"Week {entry.week} was not marked as done.", "info")
    return redirect(url_for("selfcare.item", track=entry.track, slug=entry.slug))
