"""The fake Twilio server answers as Twilio does, so the other tests can trust what it records."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.fixtures.fake_twilio import segments


def _library_client(fake, *, token=None) -> Client:
    client = Client(fake.account_sid, token or fake.auth_token, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = fake.base_url
    return client


def test_the_twilio_library_gets_a_message_resource_back(fake_twilio):
    message = _library_client(fake_twilio).messages.create(to="+447700900123", from_="NHS Appts", body="NHS: hi",
                                                           validity_period=600)

    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert (message.status, message.to, message.from_, message.body) == ("queued", "+447700900123", "NHS Appts",
                                                                        "NHS: hi")
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.account_sid == fake_twilio.account_sid
    assert isinstance(message.date_created, dt.datetime)
    assert message.date_created.tzinfo is not None
    assert [m.sid for m in fake_twilio.messages] == [message.sid]


def test_a_wrong_token_is_refused_with_401_and_a_twilio_error(fake_twilio):
    with pytest.raises(TwilioRestException) as caught:
        _library_client(fake_twilio, token="wrong").messages.create(to="+447700900123", from_="NHS Appts", body="x")

    assert (caught.value.status, caught.value.code) == (401, 20003)
    assert fake_twilio.messages == []


def test_errors_have_twilios_json_shape(fake_twilio):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"

    unauthenticated = requests.post(url, data={"To": "+447700900123", "From": "NHS Appts", "Body": "x"}, timeout=5)
    fake_twilio.fail_next(1, status=429)
    limited = requests.post(url, data={"To": "+447700900123", "From": "NHS Appts", "Body": "x"},
                            auth=(fake_twilio.account_sid, fake_twilio.auth_token), timeout=5)
    other_account = requests.post(url.replace(fake_twilio.account_sid, "AC" + "1" * 32), data={"Body": "x"},
                                  auth=(fake_twilio.account_sid, fake_twilio.auth_token), timeout=5)

    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["WWW-Authenticate"].startswith("Basic")
    assert unauthenticated.json() == {"code": 20003, "message": "Authenticate",
                                      "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
    assert limited.status_code == 429
    assert limited.json()["code"] == 20429
    assert other_account.status_code == 404
    assert [r.response_status for r in fake_twilio.requests] == [401, 429, 404]
    assert fake_twilio.messages == []


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": "NHS Appts", "Body": "x"}, 21604),
        ({"To": "+447700900123", "Body": "x"}, 21603),
        ({"To": "+447700900123", "From": "NHS Appts"}, 21602),
        ({"To": "07700 900123", "From": "NHS Appts", "Body": "x"}, 21211),
        ({"To": "+447700900123", "From": "NHS Appts", "Body": "x", "ValidityPeriod": "36001"}, 21624),
    ],
)
def test_bad_requests_are_refused_as_twilio_would(fake_twilio, form, code):
    url = f"{fake_twilio.base_url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"

    response = requests.post(url, data=form, auth=(fake_twilio.account_sid, fake_twilio.auth_token), timeout=5)

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert fake_twilio.messages == []


def test_segments_are_counted_as_twilio_bills_them():
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("€" * 80) == 1
    assert segments("’" * 70) == 1  # outside GSM-7: UCS-2, 70 to a segment
    assert segments("’" * 71) == 2
