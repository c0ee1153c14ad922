"""The patient's diary, trends and CSV export; their goals with weekly check-ins; their flare-up plan.

Everything here is the signed-in patient's own: records are looked up with the patient's id as well as their
own, so another patient's id answers 404, and staff get 403 (these are patient pages).
"""

from __future__ import annotations

import datetime as dt
import functools

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required
from portal.dates import london_today, weekday_and_date
from portal.db import utcnow
from portal.diary import charts, services
from portal.diary.forms import (
    PLAN_LABELS,
    CheckInForm,
    DeletePlanForm,
    DiaryEntryForm,
    FlarePlanForm,
    GoalForm,
    GoalStatusForm,
)
from portal.diary.models import (
    ACTIVITY_SCALE,
    CHECK_IN_WORDS,
    MOOD_SCALE,
    PLAN_SECTIONS,
    SLEEP_SCALE,
)
from portal.extensions import db_session, read_only

bp = Blueprint("diary", __name__)

SCORES = ("pain", "sleep", "mood", "activity")


def _today() -> dt.date:
    return london_today(utcnow())


@functools.lru_cache(maxsize=64)
def day_label(day: dt.date, today: dt.date) -> str:
    """'Today (Monday 5 January)', 'Yesterday (...)', or the day itself."""
    name = weekday_and_date(day, year=False)
    if day == today:
        return f"Today ({name})"
    if day == today - dt.timedelta(days=1):
        return f"Yesterday ({name})"
    return name


def day_words(day: dt.date, today: dt.date) -> str:
    """'today', 'yesterday' or 'Saturday 3 January', to go inside a sentence."""
    if day == today:
        return "today"
    if day == today - dt.timedelta(days=1):
        return "yesterday"
    return weekday_and_date(day, year=False)


def _requested_day(days: list[dt.date]) -> dt.date:
    """The day asked for in ``?day=YYYY-MM-DD`` if it may be filled in; otherwise today."""
    try:
        day = dt.date.fromisoformat((request.args.get("day") or "")[:10])
    except ValueError:
        return days[0]
    return day if day in days else days[0]


# Diary ----------------------------------------------------------------------------------------------------


@bp.route("/diary", methods=["GET", "POST"])
@patient_required
def entry():
    patient = current_patient()
    today = _today()
    days = services.fillable_days(today)
    form = DiaryEntryForm()
    form.set_days(days, [day_label(day, today) for day in days])
    filled_in_day = None
    if form.validate_on_submit():
        # Straight to the one-statement write: the diary POST reads nothing first.
        day = form.chosen_day
        values = services.EntryValues(*(form.score(name) for name in SCORES), note=form.note.data or "")
        try:
            entry_id = services.save_entry(db_session(), patient.id, day, values, today=today, now=utcnow(),
                                           shown_day=form.loaded_for)
        except services.DayFilledIn as problem:
            filled_in_day = problem.day
            form.day.errors.append(f"You have already filled in your diary for {day_words(day, today)}. "
                                   f"Open {_entry_name(day, today)} to change it")
        except services.DiaryError as problem:
            form.day.errors.append(str(problem))
        else:
            audit("diary_entry_saved", patient_id=patient.id, detail=f"entry {entry_id} for {day.isoformat()}")
            flash(f"Your diary for {day_words(day, today)} is saved.", "success")
            return redirect(url_for("diary.entry"))
    # A refused form is shown again for the day it was showing, with what the patient chose still in it.
    day = (form.loaded_for or days[0]) if form.is_submitted() else _requested_day(days)
    page = services.entry_page(db_session(), patient.id, day, today=today)
    if not form.is_submitted():
        source = page.entry or page.defaults_from
        form.show(day=day.isoformat(), note=page.entry.note if page.entry else "",
                  **({name: str(getattr(source, name)) for name in SCORES} if source is not None else {}))
    form.shown_day.data = day.isoformat()
    return render_template(
        "diary/entry.html", form=form, page=page, today=today, day_label=day_label, day_words=day_words,
        filled_in_day=filled_in_day, scales={"sleep": SLEEP_SCALE, "mood": MOOD_SCALE, "activity": ACTIVITY_SCALE},
    ), 400 if form.is_submitted() else 200


def _entry_name(day: dt.date, today: dt.date) -> str:
    """"today's entry", "yesterday's entry" or "the entry for Saturday 3 January", to go inside a sentence."""
    words = day_words(day, today)
    return f"{words}'s entry" if day >= today - dt.timedelta(days=1) else f"the entry for {words}"


@bp.route("/diary/trends")
@read_only
@patient_required
def trends():
    patient = current_patient()
    weeks = 12 if request.args.get("weeks") == "12" else 4
    trend = services.trend(db_session(), patient.id, weeks=weeks, today=_today())
    return render_template(
        "diary/trends.html", trend=trend, weeks=weeks,
        charts=charts.diary_charts(trend.days, trend.series("pain"), trend.series("sleep"), trend.series("mood")),
        scales={"sleep": SLEEP_SCALE, "mood": MOOD_SCALE, "activity": ACTIVITY_SCALE},
        long_day=weekday_and_date,
    )


@bp.route("/diary/export.csv")
@read_only
@patient_required
def export():
    patient = current_patient()
    # A byte order mark first, so spreadsheet programs read the note's accents as UTF-8.
    body = "\ufeff" + services.export_csv(db_session(), patient.id)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="pain-diary-{_today().isoformat()}.csv"',
    })


# Goals ----------------------------------------------------------------------------------------------------


def _own_goal(goal_id: int):
    try:
        return services.goal_for_patient(db_session(), current_patient().id, goal_id)
    except services.GoalNotFound:
        abort(404)


def _goal_page(form: GoalForm, goal):
    example = _today() + dt.timedelta(days=42)
    return render_template("diary/goal_form.html", form=form, goal=goal,
                           example_date=f"{example.day} {example.month} {example.year}"), (
        400 if form.is_submitted() else 200)


def _goal_values(form: GoalForm) -> services.GoalValues:
    return services.GoalValues(what=form.what.data, how_much=form.how_much.data, target_date=form.target_date.data,
                               why=form.why.data, confidence=int(form.confidence.data))


@bp.route("/goals")
@read_only
@patient_required
def goals():
    patient = current_patient()
    s = db_session()
    week = services.week_start(_today())
    all_goals = services.goals_for(s, patient.id)
    return render_template(
        "diary/goals.html", goals=all_goals, week=week,
        this_week=services.check_ins_for_week(s, [g for g in all_goals if g.is_active], week),
        check_in_words=CHECK_IN_WORDS,
    )


@bp.route("/goals/new", methods=["GET", "POST"])
@patient_required
def new_goal():
    patient = current_patient()
    form = GoalForm(today=_today())
    if form.validate_on_submit():
        added = services.add_goal(db_session(), patient.id, _goal_values(form), now=utcnow())
        if added.new:  # not the same goal sent a second time
            audit("goal_added", patient_id=patient.id, detail=f"goal {added.goal.id}")
        flash("Your goal is saved. Check in each week to say how it went.", "success")
        return redirect(url_for("diary.goal", goal_id=added.goal.id))
    return _goal_page(form, None)


@bp.route("/goals/<int:goal_id>")
@read_only
@patient_required
def goal(goal_id: int):
    own = _own_goal(goal_id)
    s = db_session()
    week = services.week_start(_today())
    history = services.check_in_history(s, own)
    return render_template(
        "diary/goal.html", goal=own, history=history, week=week,
        this_week=next((c for c in history if c.week_start == week), None),
        check_in_words=CHECK_IN_WORDS, status_form=GoalStatusForm(),
    )


@bp.route("/goals/<int:goal_id>/edit", methods=["GET", "POST"])
@patient_required
def edit_goal(goal_id: int):
    patient = current_patient()
    own = _own_goal(goal_id)
    form = GoalForm(obj=own, today=_today(), keep_date=own.target_date)
    if form.validate_on_submit():
        services.change_goal(db_session(), own, _goal_values(form), now=utcnow())
        audit("goal_changed", patient_id=patient.id, detail=f"goal {own.id}")
        flash("Your goal is updated.", "success")
        return redirect(url_for("diary.goal", goal_id=own.id))
    if not form.is_submitted():
        form.show(confidence=str(own.confidence))
    return _goal_page(form, own)


@bp.route("/goals/<int:goal_id>/check-in", methods=["GET", "POST"])
@patient_required
def goal_check_in(goal_id: int):
    patient = current_patient()
    own = _own_goal(goal_id)
    today = _today()
    if not own.is_active:
        flash("This goal is finished. Start working on it again to check in.", "info")
        return redirect(url_for("diary.goal", goal_id=own.id))
    form = CheckInForm()
    if form.validate_on_submit():
        check_in_id = services.check_in(db_session(), own, outcome=form.outcome.data, note=form.note.data or "",
                                        today=today, now=utcnow())
        audit("goal_check_in_saved", patient_id=patient.id, detail=f"check-in {check_in_id}, goal {own.id}")
        flash("Your check-in for this week is saved.", "success")
        return redirect(url_for("diary.goal", goal_id=own.id))
    week = services.week_start(today)
    if not form.is_submitted():
        current = services.check_ins_for_week(db_session(), [own], week).get(own.id)
        if current is not None:
            form.show(outcome=current.outcome, note=current.note)
    return render_template("diary/check_in.html", form=form, goal=own, week=week), (
        400 if form.is_submitted() else 200)


GOAL_STATUS_CHANGES = {
    "achieved": ("goal_achieved", "Well done. Your goal is marked as achieved."),
    "stopped": ("goal_stopped", "Your goal is stopped. You can start it again at any time."),
    "active": ("goal_restarted", "You are working on this goal again."),
}


@bp.route("/goals/<int:goal_id>/status", methods=["POST"])
@patient_required
def goal_status(goal_id: int):
    patient = current_patient()
    own = _own_goal(goal_id)
    form = GoalStatusForm()
    if not form.validate_on_submit():
        abort(400)
    services.set_goal_status(db_session(), own, form.status.data, now=utcnow())
    action, message = GOAL_STATUS_CHANGES[form.status.data]
    audit(action, patient_id=patient.id, detail=f"goal {own.id}")
    flash(message, "success")
    return redirect(url_for("diary.goal", goal_id=own.id))


# Flare-up plan ---------------------------------------------------------------------------------------------


@bp.route("/flare-up-plan", methods=["GET", "POST"])
@patient_required
def flare_plan():
    patient = current_patient()
    form = FlarePlanForm()
    if form.validate_on_submit():
        plan_id = services.save_flare_plan(db_session(), patient.id, form.sections, now=utcnow())
        audit("flare_plan_saved", patient_id=patient.id, detail=f"plan {plan_id}")
        flash("Your flare-up plan is saved. You can print it or keep it on your phone.", "success")
        return redirect(url_for("diary.flare_plan"))
    plan = services.flare_plan_for(db_session(), patient.id)
    if not form.is_submitted() and plan is not None:
        form.show(**{name: getattr(plan, name) for name in PLAN_SECTIONS})
    return render_template("diary/flare_plan.html", form=form, plan=plan, labels=PLAN_LABELS), (
        400 if form.is_submitted() else 200)


@bp.route("/flare-up-plan/delete", methods=["GET", "POST"])
@patient_required
def delete_flare_plan():
    """Ask, then delete: a plan cannot be emptied by saving it blank, which is refused as a likely slip."""
    patient = current_patient()
    form = DeletePlanForm()
    if not form.validate_on_submit():
        if services.flare_plan_for(db_session(), patient.id) is None:
            return redirect(url_for("diary.flare_plan"))
        return render_template("diary/flare_plan_delete.html", form=form), 400 if form.is_submitted() else 200
    # A second tap (or another tab) finds no plan: nothing was deleted, so nothing is audited.
    if (plan_id := services.delete_flare_plan(db_session(), patient.id)) is not None:
        audit("flare_plan_deleted", patient_id=patient.id, detail=f"plan {plan_id}")
    flash("Your flare-up plan is deleted. You can write a new one at any time.", "success")
    return redirect(url_for("diary.flare_plan"))


@bp.route("/flare-up-plan/print")
@read_only
@patient_required
def flare_plan_print():
    patient = current_patient()
    plan = services.flare_plan_for(db_session(), patient.id)
    if plan is None or plan.is_empty:
        flash("Write your flare-up plan first, then you can print it.", "info")
        return redirect(url_for("diary.flare_plan"))
    return render_template("diary/flare_plan_print.html", plan=plan, patient=patient, labels=PLAN_LABELS,
                           sections=PLAN_SECTIONS)
