"""The patient's home page and their profile."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.appointments import services as appointments
from portal.audit.web import audit
from portal.auth import codes
from portal.auth import services as auth_services
from portal.auth.access import current_patient, patient_required
from portal.auth.models import OneTimeCode
from portal.booking import services as booking
from portal.booking import waitlist
from portal.dates import london_today
from portal.db import utcnow
from portal.diary import services as diary
from portal.extensions import db_session, domain, limiter, read_only
from portal.messaging import texts
from portal.patients import services as patients
from portal.patients.forms import EmailForm, MobileCodeForm, MobileForm, NeedsForm, TextsForm
from portal.patients.identifiers import InvalidIdentifier, format_uk_mobile, format_uk_phone, parse_uk_mobile
from portal.questionnaires import services as questionnaires
from portal.selfcare import services as selfcare

bp = Blueprint("patients", __name__)


@bp.route("/")
@read_only
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.sign_in"))
    if current_user.is_staff:
        return redirect(url_for("staff.dashboard"))
    return _patient_home()


@patient_required
def _patient_home():
    patient = current_patient()
    now = utcnow()
    upcoming = booking.next_session(db_session(), patient, now=now)
    offer_id = waitlist.open_offer_id(db_session(), domain(), patient, now=now)
    appointment = appointments.next_appointment(db_session(), patient.id, now=now)
    mine = selfcare.reading_for_patient(db_session(), domain(), patient, activated_at=current_user.created_at, now=now,
                                        with_releases=False)
    reading = mine.this_week()
    # A discharged patient keeps their reading, but is not pressed to catch up on it (nor texted about it: the
    # dispatcher sends no nudges to them), and has no questionnaires due (questionnaires.due_questionnaire).
    catch_up = 0 if patient.discharged else sum(entry.status == "catch-up" for entry in mine.weeks())
    course = domain().catalogue.course_for_tier(patient.tier)
    # Waiting for a place on the course (only asked when no session is booked: the page says so there), and
    # whether the list can still offer one (not after a discharge, or a move to another team for one group).
    waiting = upcoming is None and course is not None and waitlist.on_waiting_list(db_session(), patient.id, course.key)
    may_be_offered = waiting and any(waitlist.may_be_offered(domain(), patient, entry)
                                     for entry in waitlist.live_entries_for_patient(db_session(), patient.id)
                                     if entry.service_key == course.key)
    questionnaire = questionnaires.due_questionnaire(db_session(), domain(), patient, now=now)
    return render_template(
        "patients/home.html",
        diary_done=diary.filled_in(db_session(), patient.id, london_today(now)),
        questionnaire=questionnaire,
        patient=patient,
        upcoming=upcoming,
        offer_id=offer_id,
        appointment=appointment,
        reading=reading,
        catch_up=catch_up,
        course=course,
        waiting=waiting,
        may_be_offered=may_be_offered,
        service_name=lambda key: domain().catalogue.get(key).name,
    )


@bp.route("/reading/<slug>")
@read_only
@patient_required
def reading(slug: str):
    """The old address of this week's reading: the weekly reading pages replace it."""
    return redirect(url_for("selfcare.week_list"))


# The patient's profile: their own record only, reached through current_patient(), never by an id in the URL.

MOBILE_CHANGE = "mobile_change"
CODE_REFUSED = "The code is not right, or it has expired. Check the text, or ask for a new code"


def _allow_drama_range() -> bool:
    return not current_app.config["PRODUCTION"]


@bp.route("/profile")
@read_only
@patient_required
def profile():
    return render_template("patients/profile.html", patient=current_patient())


# What a patient is told when a change would leave them, or someone else, unable to sign in.
_OWN_CONTACT = {
    "email-taken": "You cannot use this email address. Enter a different one",
    "mobile-shared": "You share your mobile number with someone else registered with us, so you need an email "
                     "address to sign in",
}


# The count is over the last 24 hours, not the calendar day, so the message says so.
_TOO_MANY_EMAILS = ("You have tried several email addresses we could not use in the last 24 hours. Try again in 24 "
                    "hours, or call us on {phone} to change your email address")


def _may_try_email(form: EmailForm, patient) -> bool:
    """False, with the error on the field, once the patient has had too many addresses refused in a day."""
    if not form.email.data or form.email.data == patient.email:
        return True
    if not patients.email_refusals_used_up(db_session(), patient.id, now=utcnow()):
        return True
    form.email.errors.append(_TOO_MANY_EMAILS.format(phone=domain().policy.service.phone))
    return False


@bp.route("/profile/email", methods=["GET", "POST"])
@patient_required
@limiter.limit("10 per minute", methods=["POST"])
def profile_email():
    patient = current_patient()
    form = EmailForm(data={"email": patient.email or ""})
    if form.validate_on_submit() and _may_try_email(form, patient):
        try:
            if form.email.data != patient.email:
                patients.check_own_contact(db_session(), patient.mobile, form.email.data, patient_id=patient.id)
                patient.email = form.email.data
                audit("profile_email_changed", patient_id=patient.id,
                      detail="removed" if patient.email is None else "")
        except patients.SharedContact as problem:
            if problem.kind == "email-taken":
                audit("profile_email_refused", patient_id=patient.id)
            form.email.errors.append(_OWN_CONTACT[problem.kind])
        else:
            flash("Your email address has been saved.", "success")
            return redirect(url_for("patients.profile"))
    return render_template("patients/profile_email.html", form=form)


@bp.route("/profile/texts", methods=["GET", "POST"])
@patient_required
def profile_texts():
    patient = current_patient()
    form = TextsForm(data={"sms_consent": "yes" if patient.sms_consent else "no"})
    if form.validate_on_submit():
        consent = form.sms_consent.data == "yes"
        if consent != patient.sms_consent:
            patient.sms_consent = consent
            audit("profile_sms_consent_changed", patient_id=patient.id, detail="yes" if consent else "no")
        flash("Your choice about texts has been saved.", "success")
        return redirect(url_for("patients.profile"))
    return render_template("patients/profile_texts.html", form=form, no_texts=patient.no_texts)


_NEEDS_COLUMNS = (
    "needs_large_print", "needs_easy_read", "needs_bsl_interpreter", "interpreter_language", "carer_name",
    "carer_phone", "no_texts",
)


@bp.route("/profile/communication-needs", methods=["GET", "POST"])
@patient_required
def profile_needs():
    patient = current_patient()
    form = NeedsForm(data={
        **{column: getattr(patient, column) for column in _NEEDS_COLUMNS},
        "needs_interpreter": bool(patient.interpreter_language),
        "has_carer": bool(patient.carer_name),
        # Shown as people write it (020 7946 0000), not as it is stored (+442079460000).
        "carer_phone": format_uk_phone(patient.carer_phone) if patient.carer_phone else None,
    }, allow_drama_range=_allow_drama_range())
    if form.validate_on_submit():
        values = {column: getattr(form, column).data for column in _NEEDS_COLUMNS}
        if not form.needs_interpreter.data:
            values["interpreter_language"] = None
        if not form.has_carer.data:
            values["carer_name"] = values["carer_phone"] = None
        changed = [column for column, value in values.items() if getattr(patient, column) != value]
        for column in changed:
            setattr(patient, column, values[column])
        if changed:
            audit("profile_communication_needs_changed", patient_id=patient.id, detail=", ".join(changed))
        flash("Your communication needs have been saved.", "success")
        return redirect(url_for("patients.profile"))
    return render_template("patients/profile_needs.html", form=form)


@bp.route("/profile/mobile", methods=["GET", "POST"])
@patient_required
@limiter.limit("10 per minute", methods=["POST"])
def profile_mobile():
    patient = current_patient()
    form = MobileForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        now = utcnow()
        try:
            new_mobile = parse_uk_mobile(form.mobile.data, allow_drama_range=_allow_drama_range())
        except InvalidIdentifier as problem:
            form.mobile.errors.append(str(problem))
            new_mobile = None
        if new_mobile is not None and new_mobile == patient.mobile:
            form.mobile.errors.append("This is the mobile number we already have for you")
        elif new_mobile is not None and not patient.may_text:
            form.mobile.errors.append(
                f"You have asked us not to text you, so we cannot text a code. Call {domain().policy.service.phone} "
                "to change your mobile number"
            )
        elif new_mobile is not None and codes.issued_in_last_hour(
                db_session(), user, purpose=MOBILE_CHANGE, now=now) >= codes.MAX_CODES_PER_HOUR:
            form.mobile.errors.append(
                f"You have asked for {codes.MAX_CODES_PER_HOUR} codes in the last hour. Wait an hour before you ask "
                f"for another, or call {domain().policy.service.phone} to change your mobile number"
            )
        elif new_mobile is not None:
            try:
                auth_services.confirm_password(db_session(), user, form.password.data, now=now)
            except auth_services.WrongPassword as wrong:
                audit("mobile_change_failed", patient_id=patient.id, detail=f"account {user.id}: wrong password")
                form.password.errors.append(
                    "You have typed a wrong password too many times. Wait a few minutes and try again"
                    if wrong.locked else "Your password is not right"
                )
            else:
                codes.issue_code(
                    db_session(), user, purpose=MOBILE_CHANGE, send_to=new_mobile, text=texts.mobile_change_code(),
                    patient=patient, now=now,
                )
                audit("mobile_change_code_sent", patient_id=patient.id, detail=f"account {user.id}")
                return redirect(url_for("patients.profile_mobile_code"))
    return render_template("patients/profile_mobile.html", form=form)


def _pending_mobile_change() -> OneTimeCode | None:
    return db_session().scalars(
        select(OneTimeCode)
        .where(OneTimeCode.user_id == current_user.id, OneTimeCode.purpose == MOBILE_CHANGE,
               OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.id.desc())
        .limit(1)
    ).one_or_none()


@bp.route("/profile/mobile/code", methods=["GET", "POST"])
@patient_required
@limiter.limit("10 per minute", methods=["POST"])
def profile_mobile_code():
    patient = current_patient()
    now = utcnow()
    pending = _pending_mobile_change()
    if pending is None or now >= pending.expires_at:
        flash("Ask for a new code to change your mobile number.", "info")
        return redirect(url_for("patients.profile_mobile"))
    form = MobileCodeForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            record = codes.check_code(db_session(), user, purpose=MOBILE_CHANGE, code=form.code.data, now=now)
        except codes.CodeRejected:
            audit("mobile_change_code_rejected", patient_id=patient.id, detail=f"account {user.id}")
            form.code.errors.append(CODE_REFUSED)
        else:
            # The number comes from the code's own record, never from the browser. Whoever typed the code holds
            # the phone, so they may be told that someone else registered with us uses it too.
            try:
                patients.check_own_contact(db_session(), record.sent_to, patient.email, patient_id=patient.id)
            except patients.SharedContact:
                form.code.errors.append(
                    "Someone else registered with us uses this mobile number. Add your email address to your "
                    "account first, so that you can sign in with it, then change your mobile number")
            else:
                patient.set_mobile(record.sent_to)
                audit("mobile_changed", patient_id=patient.id, detail=f"account {user.id}")
                flash("Your mobile number has been changed.", "success")
                return redirect(url_for("patients.profile"))
    return render_template("patients/profile_mobile_code.html", form=form, sent_to=format_uk_mobile(pending.sent_to))
