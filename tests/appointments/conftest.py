"""Clients for the appointment tests: patients of each tier, reception, admins and facilitators."""

from __future__ import annotations

import pytest

from portal.auth.models import Role
from tests import factories
from tests.conftest import sign_in


def signed_in_patient(app, session, **kw):
    user = factories.create_patient_user(session, **kw)
    client = app.test_client()
    assert sign_in(client, user.patient.mobile).status_code == 302
    client.user = user
    return client


def signed_in_staff(app, session, role: Role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    assert sign_in(client, user.email).status_code == 302
    client.user = user
    return client


@pytest.fixture
def tier2_client(app, session):
    """A Tier 2 patient of the Whittington team."""
    return signed_in_patient(app, session, tier=2, team="whittington")


@pytest.fixture
def admin_client(app, session):
    return signed_in_staff(app, session, Role.ADMIN)


@pytest.fixture
def facilitator_client(app, session):
    return signed_in_staff(app, session, Role.FACILITATOR)
