"""The SMS outbox: every text is a row here first, written in the transaction that caused it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db import Base, UTCDateTime, utcnow

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "cancelled"})

# What a delivery receipt (Twilio's status callback) may change, from each status: never out of a final one.
# 'sending' is there because a receipt can overtake the dispatcher recording the answer it got; 'unknown'
# (a timeout after the request went out) may become anything the provider reports, since a receipt proves
# it took the text. 'pending' rows have not been sent (or are waiting to be tried again): a receipt for them
# is stale and changes nothing.
RECEIPT_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset(),
    "sending": frozenset({"sent", "delivered", "undelivered", "failed"}),
    "sent": frozenset({"delivered", "undelivered", "failed"}),
    "unknown": frozenset({"sent", "delivered", "undelivered", "failed"}),
    **{status: frozenset() for status in FINAL_STATUSES},
}

# Staff may send again only what did not arrive, or may not have.
RETRYABLE_BY_STAFF = frozenset({"failed", "unknown"})


class SmsMessage(Base):
    __tablename__ = "sms_outbox"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'unknown',"
            " 'cancelled')",
            name="status_known",
        ),
        # The dispatcher's claim query: due pending rows, oldest first.
        Index("ix_sms_outbox_due", "status", "next_attempt_at"),
        # Service reports (portal.reports): texts by the month they were written.
        Index("ix_sms_outbox_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Planning the same text twice inserts nothing: see messaging.services.enqueue_sms.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    # The course seat or the 1:1 appointment the text is about: it is not sent once that has ended.
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    kind: Mapped[str] = mapped_column(String(40))
    to_number: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The text is worthless after this (a reminder once the appointment has begun, say).
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Staff looked at a failed or unknown text and took it off their queue; its status stays.
    dismissed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


INBOUND_ACTIONS = (
    "received",  # written first, then replaced by what was done
    "confirmed",  # YES: the next appointment or group session is confirmed
    "cancelled",  # CANCEL: the next 1:1 appointment is cancelled
    "call_to_cancel",  # CANCEL after the cut-off, or for a group session: told to call
    "nothing_booked",  # YES or CANCEL with nothing upcoming
    "opted_out",  # STOP and Twilio's other opt-out words
    "opted_in",  # START, UNSTOP
    "help",  # anything else
    "unknown_sender",  # no patient, or more than one, has this number
)


class SmsInbound(Base):
    """Every text a patient (or anyone) sent us, what it was matched to, and what the portal did."""

    __tablename__ = "sms_inbound"
    __table_args__ = (
        CheckConstraint("action IN (" + ", ".join(f"'{a}'" for a in INBOUND_ACTIONS) + ")", name="action_known"),
        # The help-reply limit per number, and the patient's message log.
        Index("ix_sms_inbound_from_time", "from_number", "received_at"),
        Index("ix_sms_inbound_patient_time", "patient_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Twilio's SID of the inbound message: Twilio may post the same one twice; it is acted on once.
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    action: Mapped[str] = mapped_column(String(20), default="received")
    # What the action was about: a 1:1 appointment, or a seat and the group session in it.
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    cohort_session_id: Mapped[int | None] = mapped_column(ForeignKey("cohort_session.id"))
    # The kind of reply written to the outbox (texts.reply_*), if any.
    reply_kind: Mapped[str | None] = mapped_column(String(40))
