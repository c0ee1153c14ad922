"""The questionnaire form fed arbitrary values never answers 500, never scores a draft, and keeps one row."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from portal.questionnaires.instruments import PAIN_INTERFERENCE, PHQ9
from portal.questionnaires.models import QuestionnaireResponse, UrgentFlag
from tests.pages import csrf_token, get_page
from tests.questionnaires.helpers import signed_in_patient

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
# Real options most of the time, so drafts, submits and flags all happen; anything else the rest.
VALUE = st.one_of(
    st.sampled_from(["0", "1", "2", "3", "10"]),
    st.just(""),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60),
    st.integers(min_value=-5, max_value=99).map(str),
)
ACTION = st.sampled_from(["submit", "draft", "", "delete", "\x00"])


def _state(session, patient_id):
    session.expire_all()
    rows = list(session.scalars(select(QuestionnaireResponse).where(QuestionnaireResponse.patient_id == patient_id)))
    flags = session.scalar(select(func.count()).select_from(UrgentFlag).where(UrgentFlag.patient_id == patient_id))
    return rows, flags


def _fuzz(client, session, instrument, values, action):
    patient_id = client.user.patient_id
    page_response = client.get(f"/questionnaires/{instrument.key}")
    if page_response.status_code == 302:  # an earlier example submitted it: that is correct behaviour
        return
    token = csrf_token(get_page(client, f"/questionnaires/{instrument.key}"))
    response = client.post(f"/questionnaires/{instrument.key}", data={**values, "action": action, "csrf_token": token})
    assert response.status_code in (200, 302)
    rows, flags = _state(session, patient_id)
    assert len(rows) <= 1
    for row in rows:
        # Drafts are never scored; a submitted response has every required item, each a real option.
        assert (row.status == "draft") == (row.score is None)
        options = {item.key: {o.value for o in item.options} for item in instrument.items}
        assert all(value in options[key] for key, value in row.answers.items())
        if row.status == "submitted":
            assert all(item.key in row.answers for item in instrument.items if item.required)
    # A flag only ever comes from an item-9 answer, once per response.
    assert flags <= (1 if instrument.safety_item and rows else 0)


@pytest.fixture
def patient(app, session):
    """One patient for every example of a test (rows are emptied after the test, not between examples)."""
    return signed_in_patient(app, session)


@FUZZ
@given(values=st.fixed_dictionaries({item.key: VALUE for item in PHQ9.items}), action=ACTION)
def test_the_phq9_form(patient, session, values, action):
    _fuzz(patient, session, PHQ9, values, action)


@FUZZ
@given(values=st.dictionaries(st.sampled_from([i.key for i in PAIN_INTERFERENCE.items] + ["other", "csrf"]), VALUE),
       action=ACTION)
def test_the_interference_form(patient, session, values, action):
    _fuzz(patient, session, PAIN_INTERFERENCE, values, action)
