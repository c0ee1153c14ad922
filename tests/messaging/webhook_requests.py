"""Posting to the Twilio webhooks as Twilio does: form-encoded, signed with X-Twilio-Signature."""

from __future__ import annotations

import secrets

from portal.messaging.fake_twilio import twilio_signature

PUBLIC_BASE_URL = "https://portal.test"  # the test app's (tests/conftest.py)
STATUS_PATH = "/webhooks/twilio/status"
INBOUND_PATH = "/webhooks/twilio/inbound"
TOKEN = "test-token"


def post_signed(client, path: str, params: dict[str, str], *, token: str = TOKEN, signed_url: str | None = None,
                signature: str | None = None):
    """POST ``params`` to ``path``, signed for the portal's public URL (or ``signed_url``)."""
    url = signed_url or PUBLIC_BASE_URL + path
    headers = {"X-Twilio-Signature": signature if signature is not None else twilio_signature(token, url, params)}
    return client.post(path, data=params, headers=headers)


def receipt(client, sid: str, status: str, *, error_code: str | None = None, outbox_id: int | None = None,
            to: str = "+447700900001"):
    params = {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "From": "NHS Appts", "MessageSid": sid,
              "MessageStatus": status, "SmsSid": sid, "SmsStatus": status, "To": to}
    if error_code:
        params["ErrorCode"] = error_code
    path = STATUS_PATH + (f"?outbox={outbox_id}" if outbox_id is not None else "")
    return post_signed(client, path, params)


def inbound_text(client, from_: str, body: str, *, sid: str | None = None):
    sid = sid or "SM" + secrets.token_hex(16)
    params = {"AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01", "Body": body, "From": from_,
              "MessageSid": sid, "NumMedia": "0", "NumSegments": "1", "SmsMessageSid": sid, "SmsSid": sid,
              "SmsStatus": "received", "To": "+447700900999"}
    response = post_signed(client, INBOUND_PATH, params)
    response.sid = sid
    return response
