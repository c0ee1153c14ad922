"""The delivery-receipt webhook: Twilio's signature, and status changes that never leave a final state."""

from __future__ import annotations

import urllib.parse

import pytest
from sqlalchemy import select, update

from portal.audit.models import AuditEvent
from portal.messaging.dispatch import dispatch_due
from portal.messaging.fake_twilio import twilio_signature
from portal.messaging.models import FINAL_STATUSES, SmsMessage
from portal.messaging.receipts import callback_url, status_callback_base
from portal.patients.models import Patient
from tests.messaging.outbox import enqueue, load
from tests.messaging.webhook_requests import PUBLIC_BASE_URL, STATUS_PATH, post_signed, receipt

STATUSES = ("pending", "sending", "sent", "delivered", "undelivered", "failed", "unknown", "cancelled")
PROVIDER = {"queued": "sent", "sending": "sent", "sent": "sent", "delivered": "delivered", "read": "delivered",
            "undelivered": "undelivered", "failed": "failed"}


def _with_status(db, message_id: int, status: str, *, sid: str | None = "SM" + "a" * 32) -> None:
    with db.transaction() as s:
        s.execute(update(SmsMessage).where(SmsMessage.id == message_id).values(status=status, provider_sid=sid))


def _expected(before: str, provider_status: str) -> str:
    """The rule, written out from the issue rather than from the code: receipts never move a text out of a final
    state; a pending text has not been sent; anything else moves forward to what the provider reports."""
    after = PROVIDER[provider_status]
    if before in FINAL_STATUSES or before == "pending":
        return before
    if before == "sent" and after == "sent":
        return "sent"
    return after


# -- the signature ------------------------------------------------------------------------------------


def test_a_signed_receipt_updates_the_text_and_answers_empty_twiml(client, db, patient):
    message_id = enqueue(db, patient, key="signed")
    _with_status(db, message_id, "sent", sid="SM" + "1" * 32)

    response = receipt(client, "SM" + "1" * 32, "delivered")

    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert load(db, message_id).status == "delivered"


@pytest.mark.parametrize(
    "signature",
    [None, "", "bm90IGEgc2lnbmF0dXJl", "wrong-token", "request-host", "other-path"],
    ids=["missing", "empty", "garbage", "signed-with-another-token", "signed-for-the-proxy-hop", "other-path"],
)
def test_a_missing_or_bad_signature_is_refused_with_403_and_changes_nothing(client, db, patient, signature):
    message_id = enqueue(db, patient, key="bad-signature")
    sid = "SM" + "2" * 32
    _with_status(db, message_id, "sent", sid=sid)
    params = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}
    headers = {}
    if signature == "wrong-token":
        headers["X-Twilio-Signature"] = twilio_signature("another-token", PUBLIC_BASE_URL + STATUS_PATH, params)
    elif signature == "request-host":
        # What a portal trusting the Host header and scheme of the request would check against.
        headers["X-Twilio-Signature"] = twilio_signature("test-token", "http://localhost" + STATUS_PATH, params)
    elif signature == "other-path":
        headers["X-Twilio-Signature"] = twilio_signature("test-token", PUBLIC_BASE_URL + "/webhooks/twilio/inbound",
                                                         params)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature

    response = client.post(STATUS_PATH, data=params, headers=headers)

    assert response.status_code == 403
    assert load(db, message_id).status == "sent"


def test_a_tampered_parameter_breaks_the_signature(client, db, patient):
    message_id = enqueue(db, patient, key="tampered")
    sid = "SM" + "3" * 32
    _with_status(db, message_id, "sent", sid=sid)
    signed = {"MessageSid": sid, "MessageStatus": "delivered"}
    signature = twilio_signature("test-token", PUBLIC_BASE_URL + STATUS_PATH, signed)

    response = client.post(STATUS_PATH, data={**signed, "MessageStatus": "failed"},
                           headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403
    assert load(db, message_id).status == "sent"


def test_the_outbox_id_in_the_url_is_covered_by_the_signature(client, db, patient):
    message_id = enqueue(db, patient, key="id-signed")
    _with_status(db, message_id, "unknown", sid=None)
    params = {"MessageSid": "SM" + "4" * 32, "MessageStatus": "delivered"}
    # Signed for another text's id, then sent with this one's.
    signature = twilio_signature("test-token", PUBLIC_BASE_URL + STATUS_PATH + "?outbox=999", params)

    response = client.post(f"{STATUS_PATH}?outbox={message_id}", data=params, headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403
    assert load(db, message_id).status == "unknown"


def test_a_configured_status_callback_url_is_what_the_signature_is_checked_against(app, client, db, patient,
                                                                                  monkeypatch):
    monkeypatch.setitem(app.config, "SMS_STATUS_CALLBACK_URL", "https://hooks.example.nhs.uk/twilio/status")
    message_id = enqueue(db, patient, key="configured-url")
    sid = "SM" + "5" * 32
    _with_status(db, message_id, "sent", sid=sid)
    params = {"MessageSid": sid, "MessageStatus": "delivered"}
    url = f"https://hooks.example.nhs.uk/twilio/status?outbox={message_id}"

    response = post_signed(client, f"{STATUS_PATH}?outbox={message_id}", params, signed_url=url)

    assert response.status_code == 200
    assert load(db, message_id).status == "delivered"
    assert status_callback_base(app.config) == "https://hooks.example.nhs.uk/twilio/status"


def test_the_callback_url_is_built_from_the_public_address_with_the_outbox_id(app):
    assert status_callback_base(app.config) == "https://portal.test/webhooks/twilio/status"
    assert callback_url("https://portal.test/webhooks/twilio/status", 42) == \
        "https://portal.test/webhooks/twilio/status?outbox=42"
    assert callback_url("https://h.example/s?k=v&outbox=1", 7) == "https://h.example/s?k=v&outbox=7"
    assert status_callback_base({}) is None


def test_a_receipt_without_a_sid_or_status_is_a_bad_request(client):
    assert post_signed(client, STATUS_PATH, {"MessageStatus": "delivered"}).status_code == 400
    assert post_signed(client, STATUS_PATH, {"MessageSid": "SM" + "6" * 32}).status_code == 400


def test_a_receipt_for_no_known_text_is_answered_and_changes_nothing(client, db, patient):
    message_id = enqueue(db, patient, key="unrelated")

    assert receipt(client, "SM" + "7" * 32, "delivered").status_code == 200
    assert load(db, message_id).status == "pending"


# -- the transitions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("before", STATUSES)
@pytest.mark.parametrize("provider_status", list(PROVIDER))
def test_every_status_and_receipt_pair(client, db, patient, before, provider_status):
    message_id = enqueue(db, patient, key=f"pair-{before}-{provider_status}")
    sid = "SM" + "8" * 32
    _with_status(db, message_id, before, sid=sid)

    assert receipt(client, sid, provider_status).status_code == 200

    assert load(db, message_id).status == _expected(before, provider_status)


def test_no_final_state_is_ever_left_whatever_arrives_after_it(client, db, patient):
    for final in sorted(FINAL_STATUSES):
        message_id = enqueue(db, patient, key=f"final-{final}")
        sid = "SM" + f"{message_id:032x}"
        _with_status(db, message_id, final, sid=sid)
        for provider_status in ("queued", "sent", "delivered", "undelivered", "failed", "read"):
            receipt(client, sid, provider_status, error_code="30003")
        row = load(db, message_id)
        assert row.status == final
        assert row.error_code is None


def test_receipts_are_idempotent(client, db, patient):
    message_id = enqueue(db, patient, key="twice")
    sid = "SM" + "9" * 32
    _with_status(db, message_id, "sent", sid=sid)

    receipt(client, sid, "undelivered", error_code="30003")
    first = load(db, message_id)
    receipt(client, sid, "undelivered", error_code="30003")
    second = load(db, message_id)

    assert (first.status, first.error_code) == ("undelivered", "30003")
    assert (second.status, second.error_code, second.updated_at) == (first.status, first.error_code,
                                                                     first.updated_at)


def test_receipts_out_of_order_end_in_the_final_one(client, db, patient):
    message_id = enqueue(db, patient, key="out-of-order")
    sid = "SM" + "b" * 32
    _with_status(db, message_id, "sent", sid=sid)

    for provider_status in ("delivered", "sent", "queued"):
        receipt(client, sid, provider_status)

    assert load(db, message_id).status == "delivered"


def test_an_unknown_text_is_found_by_its_outbox_id_and_learns_its_sid(client, db, patient):
    message_id = enqueue(db, patient, key="timed-out")
    _with_status(db, message_id, "unknown", sid=None)
    sid = "SM" + "c" * 32

    receipt(client, sid, "sent", outbox_id=message_id)
    row = load(db, message_id)
    assert (row.status, row.provider_sid, row.provider) == ("sent", sid, "twilio")
    assert row.sent_at is not None

    receipt(client, sid, "delivered")  # later receipts find it by its SID
    assert load(db, message_id).status == "delivered"


def test_the_outbox_id_does_not_take_over_a_text_that_has_another_sid(client, db, patient):
    message_id = enqueue(db, patient, key="other-sid")
    _with_status(db, message_id, "sent", sid="SM" + "d" * 32)

    receipt(client, "SM" + "e" * 32, "failed", error_code="30005", outbox_id=message_id)

    row = load(db, message_id)
    assert (row.status, row.provider_sid) == ("sent", "SM" + "d" * 32)


def test_a_failure_receipt_records_its_error_code(client, db, patient):
    message_id = enqueue(db, patient, key="undelivered")
    sid = "SM" + "f" * 32
    _with_status(db, message_id, "sent", sid=sid)

    receipt(client, sid, "undelivered", error_code="30003")

    assert (load(db, message_id).status, load(db, message_id).error_code) == ("undelivered", "30003")


def test_a_21610_receipt_opts_the_patient_out(client, db, session, patient):
    message_id = enqueue(db, patient, key="receipt-21610")
    sid = "SM" + "0" * 31 + "1"
    _with_status(db, message_id, "sent", sid=sid)

    receipt(client, sid, "failed", error_code="21610")

    assert load(db, message_id).status == "failed"
    session.expire_all()
    assert session.get(Patient, patient.id).sms_opted_out_at is not None
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.patient_id == patient.id)).all()
    assert (event.action, event.actor_role) == ("sms_opted_out", "twilio")


def test_a_21211_receipt_marks_the_mobile_invalid(client, db, session, patient):
    message_id = enqueue(db, patient, key="receipt-21211")
    sid = "SM" + "0" * 31 + "2"
    _with_status(db, message_id, "sent", sid=sid)

    receipt(client, sid, "failed", error_code="21211")

    session.expire_all()
    assert session.get(Patient, patient.id).mobile_invalid_at is not None


# -- end to end: the fake posts its signed receipts to the portal --------------------------------------


def _through(client):
    def send(url: str, params: dict[str, str], headers: dict[str, str]) -> int:
        parts = urllib.parse.urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_BASE_URL
        return client.post(parts.path + (f"?{parts.query}" if parts.query else ""), data=params,
                           headers=headers).status_code
    return send


def _dispatch(app, db, domain, sms_client, **kwargs):
    return dispatch_due(db, sms_client, validity_period=domain.policy.sms.validity_period_seconds,
                        max_attempts=domain.policy.sms.max_attempts, status_callback=status_callback_base(app.config),
                        **kwargs)


def test_the_fakes_receipts_move_a_sent_text_to_delivered(app, client, db, patient, domain, fake_twilio,
                                                         twilio_client):
    fake_twilio.callback_sender = _through(client)
    message_id = enqueue(db, patient, key="end-to-end")

    assert _dispatch(app, db, domain, twilio_client).sent == 1
    callbacks = fake_twilio.wait_callbacks_idle()

    assert [c.params["MessageStatus"] for c in callbacks] == ["queued", "sent", "delivered"]
    assert [c.status_code for c in callbacks] == [200, 200, 200]
    assert load(db, message_id).status == "delivered"


def test_the_fakes_undelivered_receipt_carries_its_error(app, client, db, patient, domain, fake_twilio,
                                                        twilio_client):
    fake_twilio.callback_sender = _through(client)
    fake_twilio.deliver_next(status="undelivered", code=30005)
    message_id = enqueue(db, patient, key="end-to-end-undelivered")

    _dispatch(app, db, domain, twilio_client)
    fake_twilio.wait_callbacks_idle()

    assert (load(db, message_id).status, load(db, message_id).error_code) == ("undelivered", "30005")


def test_a_timed_out_send_that_twilio_took_is_settled_by_its_receipts(app, client, db, patient, domain, fake_twilio,
                                                                      make_twilio_client):
    fake_twilio.callback_sender = _through(client)
    fake_twilio.hang_next(seconds=1.5, accept=True)
    message_id = enqueue(db, patient, key="hung")

    assert _dispatch(app, db, domain, make_twilio_client(timeout=0.5)).unknown == 1
    assert load(db, message_id).status == "unknown"
    fake_twilio.wait_idle()
    fake_twilio.wait_callbacks_idle()

    row = load(db, message_id)
    assert (row.status, row.provider_sid) == ("delivered", fake_twilio.messages[0].sid)
    assert len(fake_twilio.messages) == 1


def test_two_receipts_at_once_leave_the_final_one(app, db, patient):
    """Concurrent receipts (delivered and a late sent) from two threads: the conditional UPDATE keeps delivered."""
    import threading

    message_id = enqueue(db, patient, key="concurrent")
    sid = "SM" + "0" * 31 + "3"
    _with_status(db, message_id, "sent", sid=sid)
    barrier = threading.Barrier(4)
    answers = []

    def post(status: str) -> None:
        client = app.test_client()
        barrier.wait()
        answers.append(receipt(client, sid, status).status_code)

    threads = [threading.Thread(target=post, args=(s,)) for s in ("delivered", "sent", "queued", "delivered")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert answers == [200] * 4
    assert load(db, message_id).status == "delivered"



def test_a_receipt_that_overtakes_the_dispatcher_keeps_its_status_and_the_send_is_still_recorded(
    app, client, db, patient, domain, fake_twilio, twilio_client
):
    """Twilio may post 'delivered' before the dispatcher has written down Twilio's answer: the receipt finds the
    row (still 'sending') by its outbox id, and the dispatcher then fills in only what it alone knows."""
    fake_twilio.callbacks_enabled = False
    message_id = enqueue(db, patient, key="overtaken")

    class Overtaken:
        name = "twilio"

        def send(self, **kwargs):
            result = twilio_client.send(**kwargs)
            assert load(db, message_id).status == "sending"
            receipt(client, result.sid, "delivered", outbox_id=message_id)
            return result

    assert _dispatch(app, db, domain, Overtaken()).sent == 1

    row = load(db, message_id)
    assert (row.status, row.provider, row.provider_sid) == ("delivered", "twilio", fake_twilio.messages[0].sid)
    assert row.sent_at is not None
