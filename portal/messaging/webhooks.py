"""Twilio's webhooks: delivery receipts and incoming texts.

No CSRF token (Twilio cannot have one): every request must carry a valid ``X-Twilio-Signature`` instead, or
it gets 403 and changes nothing. The signature covers the URL Twilio requested, so it is checked against the
portal's public address (``PUBLIC_BASE_URL``, or ``SMS_STATUS_CALLBACK_URL`` for receipts), never against the
Host, scheme or X-Forwarded-* headers of the request: behind a proxy or load balancer those describe the hop
to us, not what Twilio signed, and a client may set them to anything.
"""

from __future__ import annotations

import logging
import urllib.parse

from flask import Blueprint, Response, abort, current_app, g, request
from twilio.request_validator import RequestValidator

from portal.audit.services import Actor
from portal.db import utcnow
from portal.extensions import csrf, db_session, domain
from portal.messaging import inbound, receipts
from portal.plain_text import number_id

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")
csrf.exempt(bp)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def _public_urls(*configured: str) -> list[str]:
    """The URLs Twilio may have signed for this request: each configured address (without its own query) with
    the query string of this request, and PUBLIC_BASE_URL plus this request's path and query.

    ``request.path`` leaves out the script root, so a portal served under a prefix has that prefix in
    PUBLIC_BASE_URL, as its texted links do.
    """
    query = request.query_string.decode("utf-8", "replace")
    suffix = f"?{query}" if query else ""
    urls = []
    for url in configured:
        if url:
            parts = urllib.parse.urlsplit(url)
            urls.append(urllib.parse.urlunsplit(parts._replace(query="", fragment="")) + suffix)
    urls.append(current_app.config["PUBLIC_BASE_URL"].rstrip("/") + request.path + suffix)
    return urls


def _require_twilio_signature(*configured: str) -> None:
    signature = request.headers.get("X-Twilio-Signature", "")
    token = current_app.config.get("TWILIO_AUTH_TOKEN") or ""
    if not signature or not token:
        abort(403)
    validator = RequestValidator(token)
    if not any(validator.validate(url, request.form, signature) for url in _public_urls(*configured)):
        log.warning("twilio webhook %s: bad signature, refused", request.path)
        abort(403)


def _actor() -> Actor:
    return Actor(user_id=None, role="twilio", ip=request.remote_addr, request_id=g.get("request_id"))


def _twiml() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.route("/status", methods=["POST"])
def status():
    """A delivery receipt: MessageSid, MessageStatus and, on failure, ErrorCode."""
    _require_twilio_signature(current_app.config.get("SMS_STATUS_CALLBACK_URL") or "")
    sid = request.form.get("MessageSid", "").strip()
    provider_status = request.form.get("MessageStatus") or request.form.get("SmsStatus") or ""
    if not sid or not provider_status:
        abort(400)
    outbox = request.args.get(receipts.OUTBOX_PARAM, "")
    outcome = receipts.apply_receipt(
        db_session(), sid=sid[:64], provider_status=provider_status, error_code=request.form.get("ErrorCode"),
        outbox_id=number_id(outbox) or None, now=utcnow(), actor=_actor(),
    )
    if outcome == "unmatched":
        log.warning("twilio receipt for %s (%s): no such text", sid, provider_status)
    return _twiml()


@bp.route("/inbound", methods=["POST"])
def incoming():
    """A text someone sent to our number. Any reply goes through the outbox, never in this response."""
    _require_twilio_signature()
    sid = request.form.get("MessageSid", "").strip()
    sender = request.form.get("From", "").strip()
    if not sid or not sender:
        abort(400)
    inbound.handle_inbound(
        db_session(), domain(), message_sid=sid, from_number=sender, body=request.form.get("Body", ""),
        now=utcnow(), actor=_actor(),
    )
    return _twiml()
