"""Triaged patient records."""

from __future__ import annotations

import datetime as dt
import unicodedata

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    and_,
    false,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, validates

from portal.db import Base, UTCDateTime, utcnow
from portal.patients.identifiers import format_uk_mobile, format_uk_phone

# How long the patient has had pain, as a receptionist reads it from the referral ("a 3-year history").
# The service is for pain of more than six months, so only the first band raises a warning.
PAIN_DURATIONS = {
    "under-6-months": "Less than 6 months",
    "6-12-months": "6 months to 1 year",
    "1-5-years": "1 to 5 years",
    "over-5-years": "More than 5 years",
}

# Eligibility warnings that staff may override with a reason, by the code stored on the patient.
ELIGIBILITY_WARNINGS = {
    "under-18": "Under 18",
    "pain-under-6-months": "Pain for less than 6 months",
    "outside-area": "Postcode outside Haringey and Islington",
}

# The referral checklist: what a useful referral records, by column name.
REFERRAL_CHECKLIST = {
    "diagnosis_recorded": "Diagnosis recorded",
    "investigations_recorded": "Relevant investigations",
    "treatment_recorded": "Treatment to date",
    "letters_received": "Secondary care letters received",
}


def name_key(name: str) -> str:
    """A name as reception search compares it: case folded, accents and everything but letters and digits
    dropped, so "O'Brien-Smyth", "obrien smyth" and "OBRIENSMYTH" are one key and "Zoë" is "zoe"."""
    decomposed = unicodedata.normalize("NFKD", (name or "").casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())[:100]


# The name keys are compared by prefix in byte order; on PostgreSQL text_pattern_ops makes the index answer
# the byte-order operators (~>=~, ~<~) whatever the database's collation (see patients.search).
_PATTERN_OPS = {"family_name_key": "text_pattern_ops", "given_name_key": "text_pattern_ops"}


def _one_of(column: str, values: dict[str, str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class Patient(Base):
    __tablename__ = "patient"
    __table_args__ = (
        CheckConstraint("tier IN (1, 2)", name="tier_known"),
        CheckConstraint("length(nhs_number) = 10", name="nhs_number_ten_digits"),
        # Tier 1 has no team; a Tier 2 patient without one waits in the "needs a team" queue.
        CheckConstraint("tier = 2 OR team IS NULL", name="team_only_in_tier_2"),
        # Reception search (patients.search): by surname (then given name), by given name, by date of birth.
        # The NHS number (unique) and the mobile have their own indexes.
        Index("ix_patient_name_key", "family_name_key", "given_name_key", postgresql_ops=_PATTERN_OPS),
        Index("ix_patient_given_name_key", "given_name_key", postgresql_ops=_PATTERN_OPS),
        Index("ix_patient_date_of_birth", "date_of_birth"),
        # Service reports (portal.reports): patients by month of triage, tier and team, read from the index alone.
        Index("ix_patient_triage_report", "triage_date", "tier", "team"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nhs_number: Mapped[str] = mapped_column(String(10), unique=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    # name_key() of the two names, kept in step by _set_name_keys: what search compares.
    given_name_key: Mapped[str] = mapped_column(String(100), default="", server_default="")
    family_name_key: Mapped[str] = mapped_column(String(100), default="", server_default="")
    date_of_birth: Mapped[dt.date] = mapped_column(Date)
    mobile: Mapped[str] = mapped_column(String(16), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    postcode: Mapped[str] = mapped_column(String(8))
    tier: Mapped[int] = mapped_column(SmallInteger)
    team: Mapped[str | None] = mapped_column(String(40))
    sms_consent: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    # Triage, as recorded by SPOA. Patients registered before these columns existed have none.
    triage_date: Mapped[dt.date | None] = mapped_column(Date)
    # The checks are column constraints (not table ones) so that SQLite can add them with ADD COLUMN,
    # without rebuilding a table that other tables point at.
    pain_duration: Mapped[str | None] = mapped_column(
        String(20), CheckConstraint(_one_of("pain_duration", PAIN_DURATIONS), name="pain_duration_known")
    )
    diagnosis_recorded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    investigations_recorded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    treatment_recorded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    letters_received: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Codes of the ELIGIBILITY_WARNINGS that staff overrode at registration, comma-separated, and why.
    eligibility_warnings: Mapped[str] = mapped_column(
        String(100),
        CheckConstraint("eligibility_warnings = '' OR override_reason IS NOT NULL", name="override_has_a_reason"),
        default="",
        server_default="",
    )
    override_reason: Mapped[str | None] = mapped_column(String(500))

    # Communication needs under the Accessible Information Standard, set by the patient on their profile.
    needs_large_print: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    needs_easy_read: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    needs_bsl_interpreter: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # An interpreter is needed when a language is recorded.
    interpreter_language: Mapped[str | None] = mapped_column(String(60))
    # A carer or advocate who receives messages for the patient.
    carer_name: Mapped[str | None] = mapped_column(String(100))
    carer_phone: Mapped[str | None] = mapped_column(String(16))
    # Contact by phone or letter, never by text.
    no_texts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When the patient's number opted out of our texts: they texted STOP, or Twilio refused a text with error
    # 21610 (the number is on its opt-out list). Twilio refuses every text to it until they text START.
    sms_opted_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When Twilio refused the mobile number itself (21211 not a valid number, 21614 not a mobile): staff fix
    # it. Changing the number (set_mobile) clears it.
    mobile_invalid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set only by a clinician's recorded decision (a did-not-attend review): never by the system itself.
    discharged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    discharge_reason: Mapped[str | None] = mapped_column(Text)
    # The triage date of the latest new referral after a discharge (None: still on their first referral). It
    # starts a new episode of care: questionnaires count a new baseline from it (questionnaires.schedule).
    episode_started_on: Mapped[dt.date | None] = mapped_column(Date)

    @validates("given_name", "family_name")
    def _set_name_keys(self, name: str, value: str) -> str:
        setattr(self, f"{name}_key", name_key(value))
        return value

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @hybrid_property
    def may_text(self) -> bool:
        """The one rule for whether the portal may text this patient: they agreed, did not ask for no texts,
        and did not text STOP. (A number marked invalid is the dispatcher's business: a code proving a new
        number must still be sent.) The same rule in SQL (``Patient.may_text``) finds the texts to cancel."""
        return self.texts_setting == "yes"

    @may_text.inplace.expression
    @classmethod
    def _may_text_expression(cls):
        return and_(cls.sms_consent.is_(True), cls.no_texts.is_(False), cls.sms_opted_out_at.is_(None))

    @property
    def texts_setting(self) -> str:
        """Whether we text the patient, and if not which of their settings stops it, so every page states one
        truth: "no_texts" (a communication need: phone or letter instead), "no" (they said no to texts),
        "stop" (they replied STOP), or "yes". A need for no texts comes first: it holds whatever else is set."""
        if self.no_texts:
            return "no_texts"
        if not self.sms_consent:
            return "no"
        if self.sms_opted_out_at is not None:
            return "stop"
        return "yes"

    def set_mobile(self, mobile: str) -> None:
        """Change the mobile number. A new number has not been refused by Twilio, so the mark goes."""
        if mobile != self.mobile:
            self.mobile = mobile
            self.mobile_invalid_at = None

    def opt_out_of_texts(self, now: dt.datetime) -> bool:
        """The number texted STOP (or Twilio says it did). True if this changed anything."""
        if self.sms_opted_out_at is not None:
            return False
        self.sms_opted_out_at = now
        return True

    def opt_back_in_to_texts(self) -> bool:
        """The number texted START. True if this changed anything."""
        if self.sms_opted_out_at is None:
            return False
        self.sms_opted_out_at = None
        return True

    def discharge(self, now: dt.datetime, reason: str) -> None:
        """Discharge back to the referrer: only ever from a clinician's recorded decision, with their reason."""
        if not reason.strip():
            raise ValueError("a discharge needs a reason")
        self.discharged_at = now
        self.discharge_reason = reason

    @property
    def discharged(self) -> bool:
        return self.discharged_at is not None

    def refer_again(self, *, triage_date: dt.date, tier: int, team: str | None) -> None:
        """A new referral after a discharge, triaged again: the discharge ends and a new episode of care starts
        on the triage date. The caller keeps the ended discharge (PatientReferral) before calling this."""
        if not self.discharged:
            raise ValueError("only a discharged patient is referred again")
        if tier not in (1, 2):
            raise ValueError(f"unknown tier {tier!r}")
        self.discharged_at = None
        self.discharge_reason = None
        self.triage_date = triage_date
        self.episode_started_on = triage_date
        # Tier and team change together: never a Tier 1 patient with a team.
        self.tier = tier
        self.team = team if tier == 2 else None

    def mark_mobile_invalid(self, now: dt.datetime) -> bool:
        if self.mobile_invalid_at is not None:
            return False
        self.mobile_invalid_at = now
        return True

    @property
    def communication_needs(self) -> list[str]:
        """The patient's communication needs, in words staff read on the record and the list."""
        needs = []
        if self.needs_large_print:
            needs.append("Large print")
        if self.needs_easy_read:
            needs.append("Easy read")
        if self.needs_bsl_interpreter:
            needs.append("British Sign Language (BSL) interpreter")
        if self.interpreter_language:
            needs.append(f"Interpreter: {self.interpreter_language}")
        if self.carer_name:
            needs.append(f"Carer or advocate receives messages: {self.carer_name}, "
                         f"{format_uk_phone(self.carer_phone) if self.carer_phone else 'no phone'}")
        if self.no_texts:
            needs.append("No texts: contact by phone or letter")
        return needs

    @property
    def communication_need_tags(self) -> list[str]:
        """Short forms of the needs, for a tag in lists."""
        tags = [label for flag, label in ((self.needs_large_print, "Large print"), (self.needs_easy_read, "Easy read"),
                                          (self.needs_bsl_interpreter, "BSL interpreter")) if flag]
        if self.interpreter_language:
            tags.append(f"Interpreter ({self.interpreter_language})")
        if self.carer_name:
            tags.append("Carer receives messages")
        if self.no_texts:
            tags.append("No texts")
        return tags

    @property
    def needs_team(self) -> bool:
        return self.tier == 2 and self.team is None

    @property
    def warning_codes(self) -> list[str]:
        return [code for code in self.eligibility_warnings.split(",") if code]

    @property
    def warning_labels(self) -> list[str]:
        return [ELIGIBILITY_WARNINGS.get(code, code) for code in self.warning_codes]

    @property
    def pain_duration_label(self) -> str | None:
        return PAIN_DURATIONS.get(self.pain_duration or "")

    @property
    def referral_checklist(self) -> list[tuple[str, bool]]:
        return [(label, bool(getattr(self, column))) for column, label in REFERRAL_CHECKLIST.items()]

    def record_override(self, warnings: tuple[str, ...], reason: str | None) -> None:
        """Record the eligibility warnings staff overrode, and why. Nothing overridden: nothing changes,
        so the record of an earlier override (say, when the patient was 17) stays."""
        if not warnings:
            return
        if not reason:
            raise ValueError("overriding an eligibility warning needs a reason")
        self.eligibility_warnings = ",".join(warnings)
        self.override_reason = reason

    def assign_team(self, team: str) -> None:
        """Put a Tier 2 patient with a team (staff decide when the postcode matches no catchment)."""
        if self.tier != 2:
            raise ValueError("only Tier 2 patients have a team")
        self.team = team

    @property
    def mobile_display(self) -> str:
        """'07700 900 982' for a UK number stored as '+447700900982'; any other number as stored."""
        return format_uk_mobile(self.mobile)

    @property
    def nhs_number_display(self) -> str:
        n = self.nhs_number
        return f"{n[:3]} {n[3:6]} {n[6:]}"


class PatientReferral(Base):
    """A new referral recorded after a discharge, keeping the discharge it ended (the patient's own columns are
    cleared for the new episode) and the triage it replaced: the record's history of episodes of care."""

    __tablename__ = "patient_referral"
    __table_args__ = (
        CheckConstraint("tier IN (1, 2)", name="tier_known"),
        CheckConstraint("tier = 2 OR team IS NULL", name="team_only_in_tier_2"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    # The new referral: when SPOA triaged it, to which tier and team, and who referred (reception's short note).
    triage_date: Mapped[dt.date] = mapped_column(Date)
    tier: Mapped[int] = mapped_column(SmallInteger)
    team: Mapped[str | None] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(String(200))
    # The discharge this referral ended, and the triage date of the episode before it.
    discharged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    discharge_reason: Mapped[str | None] = mapped_column(Text)
    previous_triage_date: Mapped[dt.date | None] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
