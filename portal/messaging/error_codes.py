"""What the error codes on a text mean, in words staff can act on, and which ones change the patient's record.

Numeric codes are Twilio's (https://www.twilio.com/docs/api/errors); the lower-case ones are the portal's own,
written by the dispatcher when it did not send a text or could not tell whether it went.
"""

from __future__ import annotations

# Twilio refuses the text because the number has opted out (it texted STOP to our sender).
OPTED_OUT = frozenset({"21610"})
# Twilio refuses the number itself: not a valid phone number, or not a mobile.
INVALID_NUMBER = frozenset({"21211", "21614"})

_WORDS = {
    # Twilio, when we send.
    "20003": "Twilio refused the portal's credentials (the account settings need checking)",
    "20429": "Twilio was too busy and asked us to slow down",
    "20500": "Twilio had an internal error",
    "20503": "Twilio was unavailable",
    "21211": "Not a valid phone number: check the patient's mobile number",
    "21408": "Texting this country is not enabled",
    "21610": "The patient replied STOP: Twilio will not text this number until they reply START",
    "21612": "Twilio cannot reach this number",
    "21614": "Not a mobile number: check the patient's mobile number",
    "21617": "The text was too long",
    "21624": "The validity period was refused",
    # The networks, after sending (delivery receipts).
    "30001": "Twilio's queue was full and the text expired",
    "30002": "The Twilio account is suspended",
    "30003": "The phone was switched off or out of signal until the text expired",
    "30004": "The text was blocked, by the patient or their network",
    "30005": "The number is unknown or no longer in use",
    "30006": "A landline, or a network that cannot take texts",
    "30007": "The network filtered the text as unwanted",
    "30008": "The network gave no reason",
    # The portal's own.
    "timeout": "Twilio did not answer in time: the text may or may not have gone",
    "dropped": "The connection to Twilio broke mid-request: the text may or may not have gone",
    "transport": "A network error mid-request: the text may or may not have gone",
    "error": "An unexpected error while sending: the text may or may not have gone",
    "connection": "The portal could not reach Twilio",
    "connect-timeout": "The portal could not reach Twilio in time",
    "expired": "Not sent: it was out of date by the time it could go",
    "no-consent": "Not sent: the patient does not take texts (or replied STOP)",
    "discharged": "Not sent: a nudge to use the portal, and the patient had been discharged",
    "mobile-invalid": "Not sent: the mobile number is marked as refused by Twilio",
    "booking-ended": "Not sent: the group place it was about had been cancelled",
    "appointment-ended": "Not sent: the appointment it was about had been cancelled or moved",
    "stuck": "The portal stopped while sending it (a crash or restart): the text may or may not have gone",
    "session-changed": "Not sent: the group session it was about had moved or been cancelled",
    "offer-ended": "Not sent: the patient had answered the offer of a place (or left the waiting list) first",
}


def explain(code: str | None) -> str:
    """The error code in words; an unlisted code is named so staff can look it up."""
    if not code:
        return ""
    return _WORDS.get(code, f"Error {code} (see twilio.com/docs/api/errors/{code})" if code.isdigit() else code)
