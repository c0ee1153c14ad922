"""Outcome questionnaires: what is due, drafts and scoring, change from baseline, and the item-9 safety flag.

Services take a session and plain arguments, only flush, and never touch the request.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from portal.auth.models import Role, User
from portal.db import read_rows, upsert_insert
from portal.messaging import texts
from portal.messaging.services import enqueue_sms, into_send_window, may_nudge
from portal.patients.models import Patient
from portal.questionnaires import instruments as measures
from portal.questionnaires.instruments import Instrument
from portal.questionnaires.models import FlagAlreadyAcknowledged, QuestionnaireResponse, UrgentFlag
from portal.questionnaires.schedule import (
    DueSet,
    Occasion,
    answered,
    courses_by_patient,
    current_occasion,
    local_day,
    plan,
    starting_point,
)
from portal.settings import DomainConfig

__all__ = ["DueSet", "FlagAlreadyAcknowledged", "due_questionnaire"]

# A set that fell due longer ago than this is not texted about (it still shows on the home page): when the
# nudge job first runs, patients activated months ago are not all texted at once.
NUDGE_WITHIN = dt.timedelta(days=28)
# An unsent nudge this old is dropped by the dispatcher rather than sent late.
NUDGE_VALID_FOR = dt.timedelta(days=2)
SAFETY_REASON = "phq9_item9"


class NotDue(LookupError):
    """The measure is not part of the patient's due set (or nothing is due)."""


def _instruments(domain: DomainConfig, occasion: Occasion) -> tuple[Instrument, ...]:
    return measures.instruments_for(
        occasion.occasion, licensed_enabled=domain.policy.questionnaires.licensed_scales_enabled
    )


_STATUSES = select(QuestionnaireResponse.instrument, QuestionnaireResponse.status).where(
    QuestionnaireResponse.patient_id == bindparam("patient_id"), QuestionnaireResponse.set_key == bindparam("set_key"))


def _statuses(session: Session, patient_id: int, set_key: str) -> tuple[frozenset[str], frozenset[str]]:
    rows = read_rows(session, _STATUSES, {"patient_id": patient_id, "set_key": set_key}).all()
    return (frozenset(i for i, status in rows if status == "submitted"),
            frozenset(i for i, status in rows if status == "draft"))


def _course_tiers(domain: DomainConfig) -> dict[str, int]:
    return {service.key: service.tier for service in domain.catalogue.services if service.kind == "course"}


def due_questionnaire(session: Session, domain: DomainConfig, patient: Patient, *, now: dt.datetime) -> DueSet | None:
    """The set of questionnaires the patient should fill in now, or None when nothing is due or all is done.
    Nothing is due while the patient is discharged: they are no longer in the service's care."""
    if patient.discharged:
        return None
    starts = {patient.id: patient.episode_started_on} if patient.episode_started_on is not None else None
    course = courses_by_patient(session, _course_tiers(domain), [patient.id], episode_starts=starts).get(patient.id)
    activated, baseline = starting_point(session, patient.id) if course is None else (None, None)
    occasions = plan(activated_on=activated, course=course, answered_baseline=baseline,
                     follow_up_months=domain.policy.questionnaires.follow_up_months,
                     episode_start=patient.episode_started_on)
    occasion = current_occasion(occasions, local_day(now))
    if occasion is None:
        return None
    submitted, started = _statuses(session, patient.id, occasion.set_key)
    due = DueSet(occasion, _instruments(domain, occasion), submitted, started)
    return None if due.complete else due


def due_instrument(session: Session, domain: DomainConfig, patient: Patient, key: str, *,
                   now: dt.datetime) -> tuple[DueSet, Instrument]:
    due = due_questionnaire(session, domain, patient, now=now)
    if due is None or not due.includes(key):
        raise NotDue(key)
    return due, measures.BY_KEY[key]


# Answers.

def response_for(session: Session, patient: Patient, due: DueSet,
                 instrument: Instrument) -> QuestionnaireResponse | None:
    return session.scalars(
        select(QuestionnaireResponse).where(
            QuestionnaireResponse.patient_id == patient.id,
            QuestionnaireResponse.set_key == due.set_key,
            QuestionnaireResponse.instrument == instrument.key,
        )
    ).one_or_none()


def own_response(session: Session, patient: Patient, response_id: int) -> QuestionnaireResponse | None:
    """One of the patient's own responses; another patient's id finds nothing."""
    return session.scalars(
        select(QuestionnaireResponse).where(
            QuestionnaireResponse.id == response_id, QuestionnaireResponse.patient_id == patient.id
        )
    ).one_or_none()


@functools.cache
def _insert_response(dialect: str):
    insert = upsert_insert(dialect)
    columns = ("patient_id", "instrument", "set_key", "occasion", "due_on", "status", "answers", "created_at",
               "updated_at")
    table = QuestionnaireResponse.__table__
    return (
        insert(QuestionnaireResponse)
        .values({name: bindparam(name, type_=table.c[name].type) for name in columns})
        .on_conflict_do_nothing(index_elements=["patient_id", "set_key", "instrument"])
    )


def _locked_response(session: Session, patient: Patient, due: DueSet, instrument: Instrument, *,
                     now: dt.datetime) -> QuestionnaireResponse:
    """The response row for this measure and set, made if need be, and locked (on PostgreSQL) for the change:
    two tabs or a double submit write one row, one after the other."""
    connection = session.connection()
    connection.execute(_insert_response(connection.dialect.name), {
        "patient_id": patient.id, "instrument": instrument.key, "set_key": due.set_key,
        "occasion": due.occasion.occasion, "due_on": due.due_on, "status": "draft", "answers": {},
        "created_at": now, "updated_at": now,
    })
    return session.scalars(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.patient_id == patient.id, QuestionnaireResponse.set_key == due.set_key,
               QuestionnaireResponse.instrument == instrument.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def missing_items(instrument: Instrument, answers: dict[str, int]) -> list[str]:
    return [item.key for item in instrument.items if item.required and item.key not in answers]


def safety_answer(instrument: Instrument, answers: dict[str, int]) -> int | None:
    """The safety item's answer when it is above the lowest option ("not at all"), else None."""
    if instrument.safety_item is None:
        return None
    value = answers.get(instrument.safety_item)
    lowest = min(o.value for o in instrument.item(instrument.safety_item).options)
    return value if value is not None and value > lowest else None


@dataclass(frozen=True)
class Saved:
    response: QuestionnaireResponse
    missing: list[str]
    # The patient must be shown urgent support now (PHQ-9 item 9 above "not at all").
    needs_support: bool
    # A flag was raised by this save (False when it was already raised for this response).
    flag_raised: UrgentFlag | None

    @property
    def submitted(self) -> bool:
        return self.response.submitted


def save_answers(session: Session, patient: Patient, due: DueSet, instrument: Instrument, answers: dict[str, int],
                 *, submit: bool, now: dt.datetime) -> Saved:
    """Keep the patient's answers, with those saved before that are not sent again. Submitting with every required
    item answered scores them by the published rule; anything less stays a draft, never scored. An item-9 answer
    above "not at all" raises the urgent flag (one open flag per response: see raise_urgent_flag), whether the
    answers are a draft or submitted.

    Raises ResponseAlreadySubmitted if this measure was already submitted for the set.
    """
    valid = {item.key: {o.value for o in item.options} for item in instrument.items}
    response = _locked_response(session, patient, due, instrument, now=now)
    # What was saved before stays, under what is sent now: a form opened in another tab before those answers were
    # saved sends only its own. An answer cannot be taken back (the items are radios), so one not sent is unchanged.
    answers = {key: value for key, value in {**(response.answers or {}), **answers}.items()
               if value in valid.get(key, ())}
    missing = missing_items(instrument, answers)
    if submit and not missing:
        value = measures.score(instrument, answers)
        response.submit(answers, score=value, band=instrument.band_for(value), now=now)
    else:
        response.save_draft(answers, now=now)
    session.flush()
    concern = safety_answer(instrument, answers)
    flag = raise_urgent_flag(session, response, concern, now=now) if concern is not None else None
    return Saved(response=response, missing=missing if submit else [], needs_support=concern is not None,
                 flag_raised=flag)


# The urgent flag.

@functools.cache
def _insert_flag(dialect: str):
    insert = upsert_insert(dialect)
    table = UrgentFlag.__table__
    return (
        insert(UrgentFlag)
        .values({name: bindparam(name, type_=table.c[name].type)
                 for name in ("patient_id", "response_id", "reason", "answer_value", "raised_at")})
        .on_conflict_do_nothing(index_elements=["response_id"], index_where=UrgentFlag.acknowledged_at.is_(None))
        .returning(UrgentFlag.id)
    )


def raise_urgent_flag(session: Session, response: QuestionnaireResponse, answer_value: int, *,
                      now: dt.datetime) -> UrgentFlag | None:
    """Raise a flag for this answer unless a clinician has it already. Returns the new flag, or None.

    A flag still open shows the gravest answer given: a draft saved again with a graver answer raises it (the
    clinician reads "Nearly every day", not the "Several days" first saved). Once acknowledged, a flag stops
    another only for answers no graver than the one the clinician read; a graver one raises a new flag."""
    acknowledged = session.scalar(
        select(func.max(UrgentFlag.answer_value))
        .where(UrgentFlag.response_id == response.id, UrgentFlag.acknowledged_at.is_not(None))
    )
    if acknowledged is not None and acknowledged >= answer_value:
        return None
    connection = session.connection()
    new_id = connection.execute(_insert_flag(connection.dialect.name), {
        "patient_id": response.patient_id, "response_id": response.id, "reason": SAFETY_REASON,
        "answer_value": answer_value, "raised_at": now,
    }).scalar()
    if new_id is None:
        session.execute(
            update(UrgentFlag)
            .where(UrgentFlag.response_id == response.id, UrgentFlag.acknowledged_at.is_(None),
                   UrgentFlag.answer_value < answer_value)
            .values(answer_value=answer_value)
        )
        return None
    return session.get(UrgentFlag, new_id)


def open_flags(session: Session) -> list[UrgentFlag]:
    """Flags no clinician has acknowledged yet, oldest first (the longest waiting at the top)."""
    return list(session.scalars(
        select(UrgentFlag).where(UrgentFlag.acknowledged_at.is_(None)).order_by(UrgentFlag.raised_at, UrgentFlag.id)
    ))


def count_open_flags(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(UrgentFlag).where(UrgentFlag.acknowledged_at.is_(None)))


def recently_acknowledged(session: Session, *, limit: int = 20) -> list[UrgentFlag]:
    return list(session.scalars(
        select(UrgentFlag).where(UrgentFlag.acknowledged_at.is_not(None))
        .order_by(UrgentFlag.acknowledged_at.desc(), UrgentFlag.id.desc()).limit(limit)
    ))


def flags_for_patient(session: Session, patient_id: int) -> list[UrgentFlag]:
    return list(session.scalars(
        select(UrgentFlag).where(UrgentFlag.patient_id == patient_id).order_by(UrgentFlag.raised_at.desc())
    ))


def acknowledge_flag(session: Session, flag_id: int, *, by: User, note: str, now: dt.datetime) -> UrgentFlag:
    """Record who acknowledged the flag, when, and the action they took. Two clinicians at once: the first
    wins and the second gets FlagAlreadyAcknowledged. A save of the patient's answers meanwhile waits for this
    one, and raises no new flag for an answer no graver. LookupError if there is no such flag."""
    note = note.strip()
    if not note:
        raise ValueError("acknowledging needs a note of the action taken")
    if by.role not in (Role.CLINICIAN.value, Role.FACILITATOR.value, Role.ADMIN.value):
        raise PermissionError("only clinicians and admins acknowledge urgent flags")
    # Lock the answers' row first, as a save of them does (_locked_response): a save landing meanwhile then waits,
    # and sees this acknowledgement, rather than raising a second open flag for the answer the clinician read.
    session.execute(
        select(QuestionnaireResponse.id)
        .where(QuestionnaireResponse.id == select(UrgentFlag.response_id).where(UrgentFlag.id == flag_id)
               .scalar_subquery())
        .with_for_update()
    )
    changed = session.execute(
        update(UrgentFlag)
        .where(UrgentFlag.id == flag_id, UrgentFlag.acknowledged_at.is_(None))
        .values(acknowledged_at=now, acknowledged_by_id=by.id, action_note=note)
        .execution_options(synchronize_session=False)
    ).rowcount
    flag = session.get(UrgentFlag, flag_id, populate_existing=True)
    if flag is None:
        raise LookupError(flag_id)
    if changed != 1:
        raise FlagAlreadyAcknowledged("this flag is already acknowledged")
    return flag


# Scores over time, for staff.

@dataclass(frozen=True)
class Change:
    points: float
    # "Reliable improvement", "Clinically important deterioration", ... or None below the threshold.
    verdict: str | None
    reliable: bool


@dataclass(frozen=True)
class ScoreRow:
    response: QuestionnaireResponse
    baseline: QuestionnaireResponse | None
    change: Change | None

    @property
    def is_baseline(self) -> bool:
        return self.baseline is not None and self.baseline.id == self.response.id


@dataclass(frozen=True)
class MeasureHistory:
    instrument: Instrument
    rows: list[ScoreRow]

    @property
    def latest(self) -> ScoreRow:
        return self.rows[-1]


def classify_change(instrument: Instrument, baseline: float, score: float) -> Change:
    """Change from baseline, with the measure's threshold: a published reliable change (PHQ-9 6 points, GAD-7 4),
    or a clinically important change marker (pain intensity), never mixed up."""
    points = score - baseline
    rule = instrument.change
    if rule is None or points == 0:
        return Change(points, None, False)
    size = abs(points)
    better = (points < 0) == rule.lower_is_better
    # The fraction is of an improvement only (IMMPACT's 30% reduction): a rise from 1 to 2 is not a doubling that
    # matters, so a deterioration has to meet the points.
    meets = size >= rule.points or (better and rule.fraction is not None and baseline > 0
                                    and size / baseline >= rule.fraction)
    if not meets:
        return Change(points, None, rule.reliable)
    kind = rule.name.replace(" change", "")
    return Change(points, f"{kind} {'improvement' if better else 'deterioration'}", rule.reliable)


def score_history(session: Session, patient_id: int) -> list[MeasureHistory]:
    """Each measure the patient has submitted, oldest first, with the change from the baseline before it."""
    responses = list(session.scalars(
        select(QuestionnaireResponse)
        .where(QuestionnaireResponse.patient_id == patient_id, QuestionnaireResponse.status == "submitted")
        .order_by(QuestionnaireResponse.submitted_at, QuestionnaireResponse.id)
    ))
    histories = []
    for instrument in measures.ALL:
        own = [r for r in responses if r.instrument == instrument.key]
        if not own:
            continue
        rows, baseline = [], None
        for response in own:
            if response.occasion == "baseline":
                baseline = response
            change = None
            if baseline is not None and baseline is not response:
                change = classify_change(instrument, baseline.score, response.score)
            rows.append(ScoreRow(response, baseline, change))
        histories.append(MeasureHistory(instrument, rows))
    return histories


def answer_labels(instrument: Instrument, response: QuestionnaireResponse) -> list[tuple[str, str]]:
    """Each question and the answer given, in words, for staff reading a response."""
    out = []
    for item in instrument.items:
        value = response.answers.get(item.key)
        label = next((o.label for o in item.options if o.value == value), "Not answered")
        out.append((item.text, label))
    return out


# The nudge text.

def nudge_due(session: Session, domain: DomainConfig, *, now: dt.datetime) -> int:
    """Text each patient (who may be texted) once per due set that is not finished. Returns texts queued.

    The idempotency key names the patient and the set, so running this again, or twice at once, queues nothing
    more. Texts wait for the reminder send window.
    """
    today = local_day(now)
    policy = domain.policy.questionnaires
    users = session.execute(
        select(User.created_at, Patient)
        .join(Patient, User.patient_id == Patient.id)
        .where(User.role == Role.PATIENT.value, User.is_active.is_(True))
    ).all()
    starts = {patient.id: patient.episode_started_on for _, patient in users if patient.episode_started_on}
    courses = courses_by_patient(session, _course_tiers(domain), episode_starts=starts)
    submitted: dict[tuple[int, str], set[str]] = {}
    # Each patient's latest baseline answered, as due_questionnaire finds it (a later id wins a tie).
    baselines: dict[int, Occasion] = {}
    for patient_id, set_key, instrument, occasion, due_on in session.execute(
        select(QuestionnaireResponse.patient_id, QuestionnaireResponse.set_key, QuestionnaireResponse.instrument,
               QuestionnaireResponse.occasion, QuestionnaireResponse.due_on)
        .where(QuestionnaireResponse.status == "submitted")
        .order_by(QuestionnaireResponse.id)
    ):
        submitted.setdefault((patient_id, set_key), set()).add(instrument)
        if occasion == "baseline" and (patient_id not in baselines or due_on >= baselines[patient_id].due_on):
            baselines[patient_id] = answered(set_key, due_on)
    due_at = into_send_window(now, domain.policy.reminders.window)
    queued = 0
    for created_at, patient in users:
        if not may_nudge(patient):
            continue
        course = courses.get(patient.id)
        occasion = current_occasion(
            plan(activated_on=local_day(created_at), course=course, answered_baseline=baselines.get(patient.id),
                 follow_up_months=policy.follow_up_months, episode_start=patient.episode_started_on), today
        )
        if occasion is None or today - occasion.due_on > NUDGE_WITHIN:
            continue
        done = submitted.get((patient.id, occasion.set_key), set())
        if all(i.key in done for i in _instruments(domain, occasion)):
            continue
        queued += enqueue_sms(
            session, key=f"questionnaire:{patient.id}:{occasion.set_key}", patient=patient,
            kind="questionnaire_due", body=texts.questionnaire_due(), now=now, due_at=due_at,
            expires_at=due_at + NUDGE_VALID_FOR,
        )
    return queued
