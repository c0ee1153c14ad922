"""Fixtures for the SMS path: the fake Twilio server, a real Twilio client pointed at it, outbox rows."""

from __future__ import annotations

import pytest

from portal.messaging.clients import TwilioSmsClient
from tests import factories
from tests.fixtures.fake_twilio import FakeTwilio


@pytest.fixture
def fake_twilio(app):
    """A running fake Twilio that accepts the test app's credentials."""
    fake = FakeTwilio(account_sid=app.config["TWILIO_ACCOUNT_SID"], auth_token=app.config["TWILIO_AUTH_TOKEN"])
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def make_twilio_client(app, fake_twilio):
    """Build a real TwilioSmsClient (the twilio library over HTTP) aimed at the fake, or at ``api_base``."""

    def make(*, timeout: float = 5.0, api_base: str | None = None, auth_token: str | None = None) -> TwilioSmsClient:
        return TwilioSmsClient(
            account_sid=app.config["TWILIO_ACCOUNT_SID"],
            auth_token=auth_token or app.config["TWILIO_AUTH_TOKEN"],
            sender=app.config["TWILIO_FROM"],
            api_base=api_base or fake_twilio.base_url,
            timeout=timeout,
        )

    return make


@pytest.fixture
def twilio_client(make_twilio_client):
    return make_twilio_client()


@pytest.fixture
def patient(session):
    return factories.create_patient(session)
