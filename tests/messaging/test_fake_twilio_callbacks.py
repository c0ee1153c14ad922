"""The fake Twilio's callbacks, signatures, refusals and demo page, checked against Twilio's own library."""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from click.testing import CliRunner
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from portal.cli import main
from portal.messaging.fake_twilio import FakeTwilio, twilio_signature


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is posted."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
                receiver.posts.append((self.path, params, self.headers.get("X-Twilio-Signature", "")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fake():
    with FakeTwilio(callback_delay=0.01) as f:
        yield f


def _client(fake: FakeTwilio) -> Client:
    client = Client(fake.account_sid, fake.auth_token, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = fake.base_url
    return client


def test_callbacks_go_queued_sent_delivered_signed_as_twilio_signs_them(fake, receiver):
    callback = f"{receiver.url}/webhooks/twilio/status?outbox=7"
    message = _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="NHS: hi",
                                            status_callback=callback)

    fake.wait_callbacks_idle()

    assert [params["MessageStatus"] for _, params, _ in receiver.posts] == ["queued", "sent", "delivered"]
    validator = RequestValidator(fake.auth_token)
    for path, params, signature in receiver.posts:
        assert path == "/webhooks/twilio/status?outbox=7"
        assert params["MessageSid"] == message.sid
        assert params["To"] == "+447700900123"
        assert "ErrorCode" not in params
        assert validator.validate(callback, params, signature)
        assert not RequestValidator("another-token").validate(callback, params, signature)
    assert [c.status_code for c in fake.callbacks] == [200, 200, 200]
    assert _client(fake).messages(message.sid).fetch().status == "delivered"


def test_the_signature_is_the_documented_hmac_sha1():
    # The worked example in Twilio's request-validation documentation (and its libraries' tests).
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212"}
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_a_message_can_be_told_to_end_undelivered_with_an_error(fake, receiver):
    fake.deliver_next(status="failed", code=30008)
    _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="NHS: hi",
                                  status_callback=f"{receiver.url}/s")

    fake.wait_callbacks_idle()

    assert [(p["MessageStatus"], p.get("ErrorCode")) for _, p, _ in receiver.posts] == [("queued", None),
                                                                                      ("failed", "30008")]


def test_no_callbacks_without_a_status_callback_or_when_turned_off(receiver):
    with FakeTwilio(callbacks=False) as quiet:
        _client(quiet).messages.create(to="+447700900123", from_="NHS Appts", body="x",
                                       status_callback=f"{receiver.url}/s")
        assert quiet.wait_callbacks_idle() == []
    with FakeTwilio() as plain:
        _client(plain).messages.create(to="+447700900123", from_="NHS Appts", body="x")
        assert plain.wait_callbacks_idle() == []
    assert receiver.posts == []


def test_an_unreachable_webhook_is_recorded_not_raised(fake):
    _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="x",
                                  status_callback="http://127.0.0.1:9/nowhere")

    callbacks = fake.wait_callbacks_idle()

    assert len(callbacks) == 3
    assert all(c.status_code is None and c.error for c in callbacks)


@pytest.mark.parametrize(("setup", "code"), [("opt_out", 21610), ("invalid", 21211), ("landline", 21614)])
def test_refused_numbers_get_twilios_errors(fake, setup, code):
    if setup == "opt_out":
        fake.opt_out("+447700900123")
    else:
        fake.refuse_number("+447700900123", code=21211 if setup == "invalid" else 21614)

    with pytest.raises(TwilioRestException) as caught:
        _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="x")

    assert (caught.value.status, caught.value.code) == (400, code)
    assert fake.messages == []
    fake.reset()
    assert _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="x").sid


def test_inbound_texts_are_signed_and_stop_and_start_change_what_it_sends(fake, receiver):
    fake.inbound_url = f"{receiver.url}/webhooks/twilio/inbound"

    result = fake.send_inbound("+447700900123", "STOP")

    [(path, params, signature)] = receiver.posts
    assert path == "/webhooks/twilio/inbound"
    assert (params["From"], params["Body"], params["To"], params["SmsStatus"]) == (
        "+447700900123", "STOP", "+447700900999", "received")
    assert params["MessageSid"].startswith("SM")
    assert RequestValidator(fake.auth_token).validate(fake.inbound_url, params, signature)
    assert result.status_code == 200
    with pytest.raises(TwilioRestException):
        _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="x")

    fake.send_inbound("+447700900123", "start")
    assert _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="x").sid


def test_the_demo_page_lists_texts_and_relays_a_reply(fake, receiver):
    fake.inbound_url = f"{receiver.url}/webhooks/twilio/inbound"
    _client(fake).messages.create(to="+447700900123", from_="NHS Appts", body="NHS: <b>reminder</b>")

    page = requests.get(fake.base_url + "/", timeout=5)
    assert page.status_code == 200
    assert "NHS: &lt;b&gt;reminder&lt;/b&gt;" in page.text
    assert 'value="+447700900123"' in page.text

    sent = requests.post(fake.base_url + "/inbound", data={"From": "+447700900123", "Body": "YES"}, timeout=5)

    assert sent.status_code == 200  # followed the redirect back to the page
    assert "the portal answered 200" in sent.text
    assert [(p["From"], p["Body"]) for _, p, _ in receiver.posts] == [("+447700900123", "YES")]
    # The demo page is not part of the API and is not recorded as an API request.
    assert [r.path for r in fake.requests] == [f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"]


def test_fetching_an_unknown_message_is_404(fake):
    with pytest.raises(TwilioRestException) as caught:
        _client(fake).messages("SM" + "0" * 32).fetch()
    assert caught.value.status == 404


def test_the_cli_command_is_there():
    result = CliRunner().invoke(main, ["fake-twilio", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--inbound-url" in result.output


def test_the_old_import_path_still_works():
    from tests.fixtures.fake_twilio import FakeTwilio as Old
    from tests.fixtures.fake_twilio import segments

    assert Old is FakeTwilio
    assert segments("x") == 1
