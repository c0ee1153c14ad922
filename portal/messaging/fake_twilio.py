"""A fake Twilio Messages API: a real HTTP server on 127.0.0.1 that the real ``twilio`` library talks to.

It answers ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form-encoded To, From, Body,
ValidityPeriod, StatusCallback), ``GET .../Messages.json`` (a list, newest first, filtered by To and From, in pages)
and ``GET .../Messages/{Sid}.json`` the way Twilio does: HTTP Basic auth
with the account SID and auth token, a message resource on success, and Twilio's JSON error body
(``code``, ``message``, ``more_info``, ``status``) otherwise.

Like Twilio, it then posts status callbacks (queued, sent, delivered: or undelivered/failed with an
ErrorCode, if told to) to the message's StatusCallback URL, signed with ``X-Twilio-Signature``
(HMAC-SHA1 with the auth token over the URL and the sorted parameters, base64). It refuses numbers that
have opted out (21610) and, when told, numbers that are not valid (21211) or not mobiles (21614).

Tests can make it misbehave: fail the next requests with a given status and error code (after taking the
message, if told: a 5xx does not prove Twilio did not queue it), hang past the
client's timeout (and then accept the message, as Twilio may have), drop the connection without an
answer, fail the list of messages (``fail_next_lists``), or answer every request slowly.

For demos (``portal fake-twilio``) it also shows a page at ``/`` listing what it was asked to send, with a
form that texts the portal's inbound webhook as a patient would reply; ``send_inbound`` does the same
from code. Everything it receives is recorded, thread-safely.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import hashlib
import heapq
import hmac
import html
import itertools
import json
import math
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

API_VERSION = "2010-04-01"
_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
_MESSAGE = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages/(?P<sid>SM[0-9a-f]{32})\.json$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
# The GSM 03.38 alphabet, written out here so the fake does not trust the code under test.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")
MAX_BODY = 1600
# The credentials the test app is configured with (tests/conftest.py).
TEST_ACCOUNT_SID = "AC" + "0" * 32
TEST_AUTH_TOKEN = "test-token"  # noqa: S105 - the test app's made-up token, not a secret
# The number patients' replies are addressed to (Ofcom's drama range: never a real phone).
FAKE_NUMBER = "+447700900999"
# What Twilio itself treats as opt-out and opt-in words (its default handling, before any Advanced Opt-Out).
TWILIO_OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
TWILIO_OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})

# A callback sender takes (url, form parameters, headers) and returns the HTTP status it got.
CallbackSender = Callable[[str, dict[str, str], dict[str, str]], int]


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """X-Twilio-Signature as Twilio computes it: HMAC-SHA1 keyed with the auth token, over the full URL
    followed by each POST parameter's name and value in name order, base64-encoded."""
    payload = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _post_over_http(url: str, params: dict[str, str], headers: dict[str, str]) -> int:
    return requests.post(url, data=params, headers=headers, timeout=(2, 10), allow_redirects=False).status_code


def segments(body: str) -> int:
    """How many SMS segments Twilio would bill for this body."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        septets = sum(2 if c in _GSM_EXTENDED else 1 for c in body)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(body.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


@dataclass
class RecordedRequest:
    """One HTTP request as the fake saw it, and the status it answered (None until answered)."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    authorized: bool
    received_at: float
    response_status: int | None = None


@dataclass(frozen=True)
class AcceptedMessage:
    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    validity_period: int | None
    status_callback: str | None
    resource: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Callback:
    """A signed request the fake made to a webhook (a status callback or an inbound text), and its answer."""

    url: str
    params: dict[str, str]
    signature: str
    status_code: int | None
    error: str | None = None


@dataclass(frozen=True)
class _Outcome:
    status: str  # "delivered", "undelivered" or "failed"
    code: int | None = None


@dataclass(frozen=True)
class _Fault:
    kind: str  # "error", "hang" or "drop"
    status: int = 500
    code: int | None = None
    message: str = ""
    seconds: float = 0.0
    accept: bool = True
    problem_details: bool = False

    @property
    def takes_the_message(self) -> bool:
        """An error answered after queueing the message anyway (``fail_next(..., accept=True)``)."""
        return self.kind == "error" and self.accept


class TwilioError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(status: int, code: int | None, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
        "status": status,
    }


def problem_body(status: int, code: int | None, message: str) -> dict[str, Any]:
    return {
        "type": f"https://www.twilio.com/docs/errors/{code}",
        "title": message,
        "status": status,
        "code": code,
        "detail": message,
        "instance": None,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeTwilio


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "FakeTwilio/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # everything is in FakeTwilio.requests instead

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self.server.fake._handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._handle(self)

    def send_body(self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout): exactly what a hang is for

    def send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json; charset=utf-8", headers)


class FakeTwilio:
    """Start with ``start()``, point the client at ``base_url``, read ``messages`` and ``requests``.

    ``callbacks``: post status callbacks to each message's StatusCallback (off: record nothing, post nothing).
    ``callback_delay``: seconds between one status and the next (queued, sent, delivered).
    ``callback_sender``: how callbacks and inbound texts are posted; by default over HTTP with ``requests``.
    Tests pass one that posts through Flask's test client instead.
    ``inbound_url``: the portal's inbound webhook, where ``send_inbound`` and the demo page post replies.
    """

    def __init__(
        self,
        *,
        account_sid: str = TEST_ACCOUNT_SID,
        auth_token: str = TEST_AUTH_TOKEN,
        callbacks: bool = True,
        callback_delay: float = 0.02,
        callback_sender: CallbackSender | None = None,
        inbound_url: str | None = None,
        number: str = FAKE_NUMBER,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callbacks_enabled = callbacks
        self.callback_delay = callback_delay
        self.callback_sender: CallbackSender = callback_sender or _post_over_http
        self.inbound_url = inbound_url
        self.number = number
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._messages: list[AcceptedMessage] = []
        self._statuses: dict[str, str] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: collections.deque[_Fault] = collections.deque()
        self._list_faults = 0
        self._outcomes: collections.deque[_Outcome] = collections.deque()
        self._opted_out: set[str] = set()
        self._invalid: dict[str, int] = {}
        self._delay = 0.0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # Status callbacks waiting to go: (due time, sequence, url, params). One worker posts them in order.
        self._pending_callbacks: list[tuple[float, int, str, dict[str, str]]] = []
        self._callback_wakeup = threading.Condition(self._lock)
        self._callback_seq = itertools.count()
        self._callbacks_posting = 0
        self._callbacks: list[Callback] = []
        self._inbound: list[Callback] = []
        self._worker: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, *, host: str = "127.0.0.1", port: int = 0) -> FakeTwilio:
        self._stopping.clear()
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-twilio", daemon=True)
        self._thread.start()
        self._worker = threading.Thread(target=self._post_callbacks, name="fake-twilio-callbacks", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop listening (later connections are refused) and release any hanging request.

        Callbacks not yet posted are dropped, as Twilio's would be if the portal never answered.
        """
        self._stopping.set()
        with self._callback_wakeup:
            self._callback_wakeup.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._worker is not None:
            self._worker.join(timeout=15)
        self._server = None
        self._thread = None
        self._worker = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake Twilio server is not running")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests read ---------------------------------------------------------------------------

    @property
    def messages(self) -> list[AcceptedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def callbacks(self) -> list[Callback]:
        """Status callbacks posted so far, in order."""
        with self._lock:
            return list(self._callbacks)

    @property
    def inbound(self) -> list[Callback]:
        """Inbound texts posted to the portal so far."""
        with self._lock:
            return list(self._inbound)

    def status_of(self, sid: str) -> str | None:
        """The status Twilio would report for this message now."""
        with self._lock:
            return self._statuses.get(sid)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being handled (a hanging one has answered)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._in_flight} request(s) still in flight after {timeout}s")
                self._idle.wait(remaining)

    def wait_for_messages(self, count: int, timeout: float = 20.0) -> list[AcceptedMessage]:
        """Poll until at least ``count`` messages were accepted; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.messages
            if len(messages) >= count:
                return messages
            time.sleep(0.05)
        raise TimeoutError(f"the fake got {len(self.messages)} message(s), not {count}, within {timeout}s")

    def wait_callbacks_idle(self, timeout: float = 20.0) -> list[Callback]:
        """Wait until every status callback due so far has been posted; returns them all."""
        deadline = time.monotonic() + timeout
        with self._callback_wakeup:
            while self._pending_callbacks or self._callbacks_posting:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._pending_callbacks)} callback(s) still to post after {timeout}s")
                self._callback_wakeup.wait(min(remaining, 0.05))
            return list(self._callbacks)

    # -- what tests set ----------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int = 500, code: int | None = None, message: str | None = None,
        problem_details: bool = False, accept: bool = False,
    ) -> None:
        """Answer the next ``n`` message requests with this HTTP status and Twilio error code.

        ``problem_details`` answers in the RFC 9457 shape newer Twilio APIs use (the library raises
        TwilioServiceException for it) instead of the classic ``code``/``message`` body. ``accept`` queues the
        message first, as Twilio may have done before answering a 5xx.
        """
        code = code if code is not None else {400: 21211, 429: 20429, 500: 20500, 503: 20503}.get(status, status)
        message = message or {20429: "Too Many Requests", 20500: "Internal Server Error",
                              20503: "Service Unavailable", 21211: "Invalid 'To' Phone Number",
                              21610: "Attempt to send to unsubscribed recipient",
                              21614: "'To' number is not a valid mobile number"}.get(code, "Error")
        with self._lock:
            self._faults.extend(
                _Fault("error", status=status, code=code, message=message, problem_details=problem_details,
                       accept=accept)
                for _ in range(n)
            )

    def fail_next_lists(self, n: int = 1) -> None:
        """Answer the next ``n`` requests for the list of messages with a 503, as when Twilio cannot say
        whether it took a text."""
        with self._lock:
            self._list_faults += n

    def hang_next(self, n: int = 1, *, seconds: float = 3.0, accept: bool = True) -> None:
        """Sleep ``seconds`` before answering the next ``n`` requests (longer than the client waits).

        With ``accept`` the message is then queued as normal: the client timed out, yet Twilio has it.
        """
        with self._lock:
            self._faults.extend(_Fault("hang", seconds=seconds, accept=accept) for _ in range(n))

    def drop_next(self, n: int = 1, *, accept: bool = True) -> None:
        """Close the connection of the next ``n`` requests without answering, after taking the message."""
        with self._lock:
            self._faults.extend(_Fault("drop", accept=accept) for _ in range(n))

    def slow(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` from now on (0 for full speed)."""
        with self._lock:
            self._delay = seconds

    def deliver_next(self, n: int = 1, *, status: str = "undelivered", code: int | None = 30003) -> None:
        """Accept the next ``n`` messages, then end their callbacks in ``status`` (undelivered or failed)
        with this ErrorCode instead of delivered."""
        if status not in ("delivered", "undelivered", "failed"):
            raise ValueError("status must be delivered, undelivered or failed")
        with self._lock:
            self._outcomes.extend(_Outcome(status, code) for _ in range(n))

    def opt_out(self, number: str) -> None:
        """The number texted STOP: Twilio refuses to text it (21610) until it texts START."""
        with self._lock:
            self._opted_out.add(number)

    def opt_in(self, number: str) -> None:
        with self._lock:
            self._opted_out.discard(number)

    def refuse_number(self, number: str, *, code: int = 21211) -> None:
        """Refuse every text to this number with 21211 (not a valid number) or 21614 (not a mobile)."""
        with self._lock:
            self._invalid[number] = code

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._outcomes.clear()
            self._opted_out.clear()
            self._invalid.clear()
            self._delay = 0.0

    # -- signing and posting, as Twilio does -----------------------------------------------------

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        return twilio_signature(self.auth_token, url, params)

    def _post_signed(self, url: str, params: dict[str, str]) -> Callback:
        signature = self.sign(url, params)
        try:
            status: int | None = self.callback_sender(url, params, {"X-Twilio-Signature": signature})
            error = None
        except Exception as exc:  # noqa: BLE001 - a webhook that cannot be reached is recorded, not raised
            status, error = None, f"{type(exc).__name__}: {exc}"
        return Callback(url=url, params=params, signature=signature, status_code=status, error=error)

    def send_inbound(self, from_: str, body: str, *, url: str | None = None, to: str | None = None) -> Callback:
        """Text the portal as a patient replying would: a signed POST to its inbound webhook, now.

        Like Twilio, an opt-out word stops texts to that number and an opt-in word allows them again.
        """
        url = url or self.inbound_url
        if not url:
            raise ValueError("no inbound_url: pass url= or set FakeTwilio(inbound_url=...)")
        sid = "SM" + secrets.token_hex(16)
        to = to or self.number
        params = {
            "AccountSid": self.account_sid, "ApiVersion": API_VERSION, "Body": body, "From": from_,
            "FromCity": "", "FromCountry": "GB", "FromState": "", "FromZip": "", "MessageSid": sid,
            "NumMedia": "0", "NumSegments": str(segments(body)), "SmsMessageSid": sid, "SmsSid": sid,
            "SmsStatus": "received", "To": to, "ToCity": "", "ToCountry": "GB", "ToState": "", "ToZip": "",
        }
        word = body.strip().upper()
        with self._lock:
            if word in TWILIO_OPT_OUT_WORDS:
                self._opted_out.add(from_)
            elif word in TWILIO_OPT_IN_WORDS:
                self._opted_out.discard(from_)
        result = self._post_signed(url, params)
        with self._lock:
            self._inbound.append(result)
        return result

    def _schedule_callbacks(self, message: AcceptedMessage, outcome: _Outcome) -> None:
        if not (self.callbacks_enabled and message.status_callback):
            return
        base = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "From": message.from_,
                "MessageSid": message.sid, "SmsSid": message.sid, "To": message.to}
        steps = ["queued", "sent", outcome.status] if outcome.status == "delivered" else ["queued", outcome.status]
        now = time.monotonic()
        with self._callback_wakeup:
            for n, status in enumerate(steps):
                params = {**base, "MessageStatus": status, "SmsStatus": status}
                if status in ("undelivered", "failed") and outcome.code:
                    params["ErrorCode"] = str(outcome.code)
                heapq.heappush(self._pending_callbacks, (now + n * self.callback_delay, next(self._callback_seq),
                                                         message.status_callback, params))
            self._callback_wakeup.notify_all()

    def _post_callbacks(self) -> None:
        while True:
            with self._callback_wakeup:
                while not self._stopping.is_set():
                    if self._pending_callbacks:
                        wait = self._pending_callbacks[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._callback_wakeup.wait(wait)
                    else:
                        self._callback_wakeup.wait(0.5)
                if self._stopping.is_set():
                    self._pending_callbacks.clear()
                    self._callback_wakeup.notify_all()
                    return
                _, _, url, params = heapq.heappop(self._pending_callbacks)
                self._callbacks_posting += 1
                self._statuses[params["MessageSid"]] = params["MessageStatus"]
            try:
                result = self._post_signed(url, params)
            finally:
                with self._callback_wakeup:
                    self._callbacks_posting -= 1
                    self._callbacks.append(result)
                    self._callback_wakeup.notify_all()

    # -- the API -----------------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return secrets.compare_digest(user, self.account_sid) and secrets.compare_digest(password, self.auth_token)

    def _handle(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        path = urllib.parse.urlsplit(handler.path).path
        if path in ("/", "/inbound"):
            self._demo_page(handler, path, form)
            return
        record = RecordedRequest(
            method=handler.command,
            path=path,
            headers={k: v for k, v in handler.headers.items()},
            form=form,
            authorized=self._authorized(handler.headers.get("Authorization")),
            received_at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(record)
            self._in_flight += 1
            delay = self._delay
        try:
            answer = self._answer(handler, record, path, form)
            if answer is None:  # a dropped connection: no status line at all
                handler.close_connection = True
                return
            status, payload, headers = answer
            if delay:
                self._stopping.wait(delay)
            with self._lock:
                record.response_status = status
            handler.send_json(status, payload, headers)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _answer(
        self, handler: _Handler, record: RecordedRequest, path: str, form: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if not record.authorized:
            return 401, error_body(401, 20003, "Authenticate"), {"WWW-Authenticate": 'Basic realm="Twilio API"'}
        one = _MESSAGE.match(path)
        if one is not None and one["account"] == self.account_sid and handler.command == "GET":
            return self._fetch(one["sid"], path)
        match = _MESSAGES.match(path)
        if match is None or match["account"] != self.account_sid:
            return 404, error_body(404, 20404, f"The requested resource {path} was not found"), {}
        if handler.command == "GET":
            with self._lock:
                failing, self._list_faults = self._list_faults > 0, max(self._list_faults - 1, 0)
            if failing:
                return 503, error_body(503, 20503, "Service Unavailable"), {}
            return self._list(handler, path)
        if handler.command != "POST":
            return 405, error_body(405, 20004, "Method not allowed"), {}
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.takes_the_message:
            self._accept_quietly(form)
        if fault is not None and fault.kind == "error":
            if fault.problem_details:
                return fault.status, problem_body(fault.status, fault.code, fault.message), {}
            return fault.status, error_body(fault.status, fault.code, fault.message), {}
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.seconds)
            if not fault.accept:
                return 500, error_body(500, 20500, "Internal Server Error"), {}
        if fault is not None and fault.kind == "drop":
            if fault.accept:
                self._accept_quietly(form)
            return None
        content_type = handler.headers.get("Content-Type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return 400, error_body(400, 20001, "Expected a form-encoded body"), {}
        try:
            message = self._accept(form)
        except TwilioError as exc:
            return exc.status, error_body(exc.status, exc.code, exc.message), {}
        return 201, message.resource, {}

    def _list(self, handler: _Handler, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """One page of messages, newest first, filtered by ``To`` and ``From`` as Twilio's list is; ``Page``
        picks the page and ``next_page_uri`` names the next one while there is one."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        to, sender = query.get("To", [None])[0], query.get("From", [None])[0]
        try:
            size = min(max(int(query.get("PageSize", ["50"])[0]), 1), 1000)
            page = max(int(query.get("Page", ["0"])[0]), 0)
        except ValueError:
            size, page = 50, 0
        with self._lock:
            matching = [m for m in reversed(self._messages)
                        if (to is None or m.to == to) and (sender is None or m.from_ == sender)]
            found = [{**m.resource, "status": self._statuses.get(m.sid, "queued")}
                     for m in matching[page * size:(page + 1) * size]]
            more = len(matching) > (page + 1) * size

        def page_uri(number: int) -> str:
            filters = {name: value for name, value in (("To", to), ("From", sender)) if value is not None}
            return f"{path}?{urllib.parse.urlencode({**filters, 'PageSize': size, 'Page': number})}"

        return 200, {"messages": found, "first_page_uri": page_uri(0), "next_page_uri": page_uri(page + 1) if more
                     else None, "previous_page_uri": page_uri(page - 1) if page else None, "page": page,
                     "page_size": size, "start": page * size, "end": page * size + max(len(found) - 1, 0),
                     "uri": page_uri(page)}, {}

    def _fetch(self, sid: str, path: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            message = next((m for m in self._messages if m.sid == sid), None)
            status = self._statuses.get(sid, "queued")
        if message is None:
            return 404, error_body(404, 20404, f"The requested resource {path} was not found"), {}
        return 200, {**message.resource, "status": status}, {}

    def _accept_quietly(self, form: dict[str, str]) -> None:
        try:
            self._accept(form)
        except TwilioError:
            pass

    def _accept(self, form: dict[str, str]) -> AcceptedMessage:
        to, sender, body = form.get("To", ""), form.get("From", "") or form.get("MessagingServiceSid", ""), \
            form.get("Body", "")
        if not to:
            raise TwilioError(400, 21604, "A 'To' phone number is required.")
        if not sender:
            raise TwilioError(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise TwilioError(400, 21602, "Message body is required.")
        if not _E164.match(to):
            raise TwilioError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not (_E164.match(sender) or _ALPHANUMERIC_SENDER.match(sender) or sender.startswith("MG")):
            raise TwilioError(400, 21212, f"Invalid From Number (caller ID): {sender}")
        if len(body) > MAX_BODY:
            raise TwilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        with self._lock:
            refused = self._invalid.get(to)
            opted_out = to in self._opted_out
        if refused == 21614:
            raise TwilioError(400, 21614, f"'To' number {to} is not a valid mobile number")
        if refused is not None:
            raise TwilioError(400, refused, f"Invalid 'To' Phone Number: {to}")
        if opted_out:
            raise TwilioError(400, 21610, "Attempt to send to unsubscribed recipient")
        validity: int | None = None
        if "ValidityPeriod" in form:
            try:
                validity = int(form["ValidityPeriod"])
            except ValueError:
                validity = -1
            if not 1 <= validity <= 36000:
                raise TwilioError(400, 21624, "Invalid validity period value")
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(dt.datetime.now(dt.UTC).replace(microsecond=0))
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        resource = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(segments(body)),
            "price": None,
            "price_unit": "GBP",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }
        message = AcceptedMessage(
            sid=sid, account_sid=self.account_sid, to=to, from_=sender, body=body, validity_period=validity,
            status_callback=form.get("StatusCallback"), resource=resource,
        )
        with self._lock:
            self._messages.append(message)
            self._statuses[sid] = "queued"
            outcome = self._outcomes.popleft() if self._outcomes else _Outcome("delivered")
        self._schedule_callbacks(message, outcome)
        return message

    # -- the demo page -------------------------------------------------------------------------------

    def _demo_page(self, handler: _Handler, path: str, form: dict[str, str]) -> None:
        """GET /: what the fake was asked to send, and a form to reply as a patient. POST /inbound: send it."""
        if path == "/inbound" and handler.command == "POST":
            sender, body = form.get("From", "").strip(), form.get("Body", "")
            result = self.send_inbound(sender, body) if _E164.match(sender) and body and self.inbound_url else None
            note = ("Sent: the portal answered " + str(result.status_code or result.error)) if result else \
                "Not sent: give a number in +44 form, some words, and run with an inbound URL."
            handler.send_body(303, b"", "text/plain", {"Location": "/?note=" + urllib.parse.quote(note)})
            return
        if path != "/" or handler.command != "GET":
            handler.send_body(405, b"Method not allowed", "text/plain")
            return
        note = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query).get("note", [""])[0]
        rows = "".join(
            f"<tr><td>{html.escape(m.to)}</td><td>{html.escape(m.body)}</td>"
            f"<td>{html.escape(self.status_of(m.sid) or '')}</td></tr>"
            for m in reversed(self.messages[-50:])
        )
        last_to = self.messages[-1].to if self.messages else "+447700900001"
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Twilio</title>
<meta name="viewport" content="width=device-width"></head><body style="font-family:sans-serif;max-width:60em">
<h1>Fake Twilio</h1><p>{html.escape(note)}</p>
<h2>Reply as a patient</h2>
<form method="post" action="/inbound"><p><label>From <input name="From" value="{html.escape(last_to)}"></label>
<label>Text <input name="Body" value="YES"></label> <button>Send to the portal</button></p></form>
<p>Inbound texts go to {html.escape(self.inbound_url or "(no inbound URL set)")}.</p>
<h2>Texts the portal sent (newest first)</h2>
<table border="1" cellpadding="4"><tr><th>To</th><th>Text</th><th>Status</th></tr>{rows}</table>
</body></html>"""
        handler.send_body(200, page.encode(), "text/html; charset=utf-8")
