"""The register and the review decision fed arbitrary text: never a 500, never a stray mark or decision."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.attendance.models import MARKS, REVIEW_ACTIONS, Attendance, DnaReview, DnaReviewAction
from portal.auth.models import Role
from portal.db import utcnow
from tests import factories
from tests.appointments.conftest import signed_in_staff
from tests.attendance import helpers
from tests.pages import csrf_token, get_page

TEXT = st.one_of(st.just(""), st.text(max_size=40), st.text(alphabet=st.characters(codec="utf-8"), max_size=3000))
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])


def test_register_marks_fuzzed(app, session):
    client = signed_in_staff(app, session, Role.ADMIN)
    cs = helpers.group_session(session, patients=1, starts_at=utcnow() - dt.timedelta(hours=1))
    [patient] = helpers.patients_of(session, cs)
    url = f"/staff/registers/{cs.id}"
    token = csrf_token(get_page(client, url))

    @FUZZ
    @given(mark=TEXT, action=TEXT, extra=TEXT)
    def post(mark, action, extra):
        response = client.post(url, data={f"mark_{patient.id}": mark, "action": action, "mark_0": extra,
                                          "csrf_token": token})
        assert response.status_code in (302, 400), response.status_code
        saved = session.scalars(select(Attendance.mark)).all()
        assert len(saved) <= 1 and set(saved) <= set(MARKS)

    post()


def test_review_decision_fuzzed(app, session):
    client = signed_in_staff(app, session, Role.ADMIN)
    patient = factories.create_patient(session)
    review = DnaReview(patient_id=patient.id, service_key="t1-physio", trigger="2 did not attend in a row",
                       opened_at=utcnow())
    session.add(review)
    session.commit()
    url = f"/staff/dna-reviews/{review.id}"
    token = csrf_token(get_page(client, url))

    @FUZZ
    @given(action=st.one_of(TEXT, st.just("contacted")), note=TEXT)
    def post(action, note):
        response = client.post(url, data={"action": action, "note": note, "csrf_token": token})
        assert response.status_code in (302, 400), response.status_code
        actions = session.scalars(select(DnaReviewAction.action)).all()
        assert set(actions) <= set(REVIEW_ACTIONS)
        assert all(n.strip() for n in session.scalars(select(DnaReviewAction.note)))

    post()
    assert session.scalar(select(func.count()).select_from(DnaReview)) == 1
