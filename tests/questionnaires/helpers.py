"""Helpers shared by the questionnaire tests: patients activated on a given day, course seats, answers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.booking.models import Booking
from portal.questionnaires import instruments as measures
from portal.questionnaires.models import QuestionnaireResponse, UrgentFlag
from tests import factories
from tests.conftest import sign_in

LONDON = ZoneInfo("Europe/London")


def london(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    """A London wall-clock time, as the aware UTC instant the portal stores."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=LONDON).astimezone(dt.UTC)


def patient_user(session, *, activated: dt.datetime | None = None, **kw):
    """A patient with an account, activated at ``activated`` (default: now)."""
    user = factories.create_patient_user(session, **kw)
    if activated is not None:
        user.created_at = activated
        session.commit()
    return user


def book_course(session, patient, *, first_date: dt.date, service_key: str = "t1-group", team: str | None = None):
    """An active seat on a new cohort starting ``first_date`` (set directly: the date may be in the past)."""
    cohort = factories.create_cohort(session, service_key=service_key, team=team, first_date=first_date)
    cohort.seats_taken = 1
    booking = Booking(patient_id=patient.id, service_key=service_key, cohort_id=cohort.id)
    session.add(booking)
    session.commit()
    return cohort, booking


def all_answers(instrument: measures.Instrument, value: int) -> dict[str, int]:
    """Every item answered with ``value`` (the difficulty item too, when the value is one of its options)."""
    return {item.key: value for item in instrument.items if value in {o.value for o in item.options}}


def form_data(answers: dict[str, int], *, action: str = "submit", csrf: str) -> dict[str, str]:
    return {**{key: str(value) for key, value in answers.items()}, "action": action, "csrf_token": csrf}


def signed_in_patient(app, session, **kw):
    user = patient_user(session, **kw)
    client = app.test_client()
    assert sign_in(client, user.patient.mobile).status_code == 302
    client.user = user
    return client


def responses(session, patient_id: int) -> list[QuestionnaireResponse]:
    session.expire_all()
    return list(session.scalars(
        select(QuestionnaireResponse).where(QuestionnaireResponse.patient_id == patient_id)
        .order_by(QuestionnaireResponse.id)
    ))


def flags(session, patient_id: int | None = None) -> list[UrgentFlag]:
    session.expire_all()
    query = select(UrgentFlag).order_by(UrgentFlag.id)
    if patient_id is not None:
        query = query.where(UrgentFlag.patient_id == patient_id)
    return list(session.scalars(query))
