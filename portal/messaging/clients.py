"""SMS provider clients behind one small interface.

The base class times and logs every send; each provider implements ``_send``. Only the dispatcher
uses these.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendResult:
    sid: str
    status: str


class SendFailed(Exception):
    """The provider did not take the message.

    ``retryable``: safe to try again later (429, 5xx, connection refused).
    ``outcome_unknown``: the request may have reached the provider (a read timeout); sending again
    could text the patient twice, so it is not retried blindly.
    """

    def __init__(self, detail: str, *, code: str | None, retryable: bool, outcome_unknown: bool = False):
        super().__init__(detail)
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown


class SmsClient:
    name = "base"

    def send(self, *, to: str, body: str, validity_period: int, status_callback: str | None) -> SendResult:
        started = time.perf_counter()
        try:
            result = self._send(to=to, body=body, validity_period=validity_period, status_callback=status_callback)
        except SendFailed as exc:
            log.warning("sms via %s failed in %.0f ms: code=%s retryable=%s unknown=%s", self.name,
                        (time.perf_counter() - started) * 1000, exc.code, exc.retryable, exc.outcome_unknown)
            raise
        log.info("sms via %s accepted in %.0f ms as %s", self.name, (time.perf_counter() - started) * 1000,
                 result.sid)
        return result

    def _send(self, *, to: str, body: str, validity_period: int, status_callback: str | None) -> SendResult:
        raise NotImplementedError

    def find_accepted(self, *, to: str, body: str, since: dt.datetime) -> SendResult | None:
        """A text with this body the provider took for this number since ``since``, if any: an earlier attempt
        answered with an error (a 5xx) or cut off by a crash may have gone all the same. Raises SendFailed
        (retryable) if the provider cannot say. A provider that never takes a text without saying so (the
        console) has nothing to find."""
        return None


class ConsoleSmsClient(SmsClient):
    """Prints texts instead of sending them (development); the dev inbox page lists them too."""

    name = "console"

    def _send(self, *, to: str, body: str, validity_period: int, status_callback: str | None) -> SendResult:
        print(f"[SMS to {to}] {body}", flush=True)
        return SendResult(sid=f"console-{uuid.uuid4().hex}", status="delivered")


class TwilioSmsClient(SmsClient):
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, sender: str, api_base: str, timeout: float = 10):
        self._client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        # Tests and the local demo point this at the fake Twilio server on 127.0.0.1.
        self._client.api.base_url = api_base.rstrip("/")
        self._sender = sender

    def _send(self, *, to: str, body: str, validity_period: int, status_callback: str | None) -> SendResult:
        kwargs = {"to": to, "from_": self._sender, "body": body, "validity_period": validity_period}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._client.messages.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as exc:
            # 429 and 5xx are Twilio's trouble; 401 and 403 are ours (a rotated token, a suspended
            # account): none of them says anything about this text, so it waits and tries again.
            retryable = exc.status in (401, 403, 429) or exc.status >= 500
            detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
            raise SendFailed(str(detail), code=str(exc.code or exc.status), retryable=retryable) from None
        except requests.exceptions.ConnectTimeout:
            raise SendFailed("connect timeout", code="connect-timeout", retryable=True) from None
        except requests.exceptions.ReadTimeout:
            # The request went out; Twilio may have queued it. Do not send again blindly.
            raise SendFailed("read timeout", code="timeout", retryable=False, outcome_unknown=True) from None
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise SendFailed("connection failed", code="connection", retryable=True) from None
            # The connection dropped after the request was written: Twilio may have queued it.
            raise SendFailed("connection dropped", code="dropped", retryable=False, outcome_unknown=True) from None
        except requests.exceptions.RequestException as exc:
            raise SendFailed(f"transport error: {type(exc).__name__}", code="transport", retryable=False,
                             outcome_unknown=True) from None
        return SendResult(sid=message.sid, status=message.status or "queued")

    # Twilio's clock and ours may differ a little: a text it took just before ``since`` still counts.
    CLOCK_SLACK = dt.timedelta(minutes=5)
    LOOKUP_PAGE_SIZE = 100
    # A number with more texts than this is not one patient's phone: give up and say so (retried, then 'unknown').
    LOOKUP_MOST = 5000

    def find_accepted(self, *, to: str, body: str, since: dt.datetime) -> SendResult | None:
        """Pages through every text Twilio holds to ``to`` from our sender for one with this body taken since
        ``since`` (less the clock slack), however many the number had since. It never stops early on dates:
        Twilio's order (by send date) and where it lists a text still in its queue, with no send date yet, are
        not ours to rely on. One patient's number has a few texts a week, so the list ends soon by itself."""
        taken_after = since - self.CLOCK_SLACK
        try:
            for seen, message in enumerate(self._client.messages.stream(to=to, from_=self._sender,
                                                                         page_size=self.LOOKUP_PAGE_SIZE)):
                created = message.date_created
                if message.body == body and isinstance(created, dt.datetime) and created >= taken_after:
                    return SendResult(sid=message.sid, status=message.status or "queued")
                if seen + 1 >= self.LOOKUP_MOST:
                    raise SendFailed("too many earlier messages to look through", code="lookup", retryable=True)
        except (TwilioException, TwilioServiceException, requests.exceptions.RequestException):
            # A page answered with an error raises the library's plain TwilioException ("Unable to fetch page").
            raise SendFailed("could not list earlier messages", code="lookup", retryable=True) from None
        return None


def _never_connected(exc: BaseException) -> bool:
    """True if the error chain shows no connection was made, so the request cannot have arrived."""
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        pending.extend(current.args)
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    return False


def client_from_config(config: dict) -> SmsClient:
    backend = config["SMS_BACKEND"]
    if backend == "console":
        return ConsoleSmsClient()
    if backend == "twilio":
        return TwilioSmsClient(
            account_sid=config["TWILIO_ACCOUNT_SID"],
            auth_token=config["TWILIO_AUTH_TOKEN"],
            sender=config["TWILIO_FROM"],
            api_base=config["TWILIO_API_BASE"],
        )
    raise ValueError(f"unknown SMS_BACKEND {backend!r}: use 'console' or 'twilio'")
