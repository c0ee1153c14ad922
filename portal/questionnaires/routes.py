"""Patients answer their due questionnaires: one page per measure, kept as a draft until submitted whole.

An answer above "not at all" to PHQ-9 item 9 shows urgent support at once (after a submit, a draft save, or a
submit with answers missing) and raises the urgent flag clinicians see on /staff/urgent.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.blueprints import BlueprintSetupState

from portal.audit.web import audit
from portal.auth.access import current_patient, patient_required
from portal.db import utcnow
from portal.extensions import db_session, domain, read_only
from portal.questionnaires import services
from portal.questionnaires.forms import questionnaire_form
from portal.questionnaires.instruments import BY_KEY, LicensedScaleWithoutText, check_licensed_scales
from portal.questionnaires.models import ResponseAlreadySubmitted

bp = Blueprint("questionnaires", __name__)


@bp.record_once
def _refuse_licensed_scales_without_text(state: BlueprintSetupState) -> None:
    from portal.settings import ConfigError

    try:
        check_licensed_scales(state.app.extensions["domain"].policy.questionnaires.licensed_scales_enabled)
    except LicensedScaleWithoutText as problem:
        raise ConfigError(f"config/policy.toml: {problem}") from None


@bp.route("/questionnaires")
@read_only
@patient_required
def overview():
    patient = current_patient()
    due = services.due_questionnaire(db_session(), domain(), patient, now=utcnow())
    return render_template("questionnaires/overview.html", due=due, patient=patient)


def _render(form, due, instrument, *, needs_support: bool = False, status: int = 200):
    position = [i.key for i in due.instruments].index(instrument.key) + 1
    return render_template(
        "questionnaires/answer.html", form=form, due=due, instrument=instrument, position=position,
        needs_support=needs_support,
    ), status


@bp.route("/questionnaires/<key>", methods=["GET", "POST"])
@patient_required
def answer(key: str):
    patient = current_patient()
    s = db_session()
    now = utcnow()
    try:
        due, instrument = services.due_instrument(s, domain(), patient, key, now=now)
    except services.NotDue:
        abort(404)
    if due.status_of(key) == "done":
        flash("You have already sent these answers.", "info")
        return redirect(url_for("questionnaires.overview"))
    form = questionnaire_form(instrument)
    if not form.is_submitted():
        draft = services.response_for(s, patient, due, instrument)
        return _render(questionnaire_form(instrument, answers=draft.answers if draft else None), due, instrument)
    if not form.validate_on_submit():
        return _render(form, due, instrument)
    try:
        saved = services.save_answers(s, patient, due, instrument, form.answers(), submit=not form.wants_draft,
                                      now=now)
    except ResponseAlreadySubmitted:
        flash("You have already sent these answers.", "info")
        return redirect(url_for("questionnaires.overview"))
    if saved.flag_raised is not None:
        audit("urgent_flag_raised", patient_id=patient.id,
              detail=f"flag {saved.flag_raised.id}, response {saved.response.id}, {instrument.key}")
    if saved.missing:
        form.mark_missing(saved.missing)
        return _render(form, due, instrument, needs_support=saved.needs_support)
    if saved.submitted:
        audit("questionnaire_submitted", patient_id=patient.id, detail=f"response {saved.response.id}, {key}")
    if saved.needs_support:
        return redirect(url_for("questionnaires.support", response_id=saved.response.id))
    if not saved.submitted:
        flash("Your answers are saved. You can come back and finish them at any time.", "success")
        return redirect(url_for("questionnaires.overview"))
    following = due.next_after(key)
    if following is not None:
        return redirect(url_for("questionnaires.answer", key=following.key))
    flash("Thank you. You have answered all the questions for now.", "success")
    return redirect(url_for("questionnaires.overview"))


@bp.route("/questionnaires/support/<int:response_id>")
@read_only
@patient_required
def support(response_id: int):
    """Urgent support after an item-9 answer above "not at all", then the way on."""
    patient = current_patient()
    s = db_session()
    response = services.own_response(s, patient, response_id) if 0 < response_id < 2**31 else None
    instrument = BY_KEY.get(response.instrument) if response is not None else None
    if instrument is None or services.safety_answer(instrument, response.answers) is None:
        abort(404)
    due = services.due_questionnaire(s, domain(), patient, now=utcnow())
    following = due.next_after(instrument.key) if due is not None else None
    return render_template("questionnaires/support.html", response=response, following=following,
                           draft=not response.submitted, instrument=instrument)
