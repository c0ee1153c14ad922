"""Saving registers and day lists: idempotent, audited, inside the correction window, never for a future or
cancelled session; DNA, late cancellation and could-not-attend counted apart."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from portal.attendance import review, services
from portal.attendance.models import Attendance, DnaReview
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from portal.auth.models import Role
from portal.booking.models import Booking
from portal.dates import LONDON
from portal.db import utcnow
from tests import factories
from tests.attendance import helpers
from tests.races import count_together


@pytest.fixture
def facilitator(session):
    return factories.create_staff(session, role=Role.FACILITATOR, enrolled=False)


@pytest.fixture
def actor(facilitator):
    return Actor(user_id=facilitator.id, role=facilitator.role)


def _marks(session, **where) -> dict[int, str]:
    return dict(session.execute(select(Attendance.patient_id, Attendance.mark).filter_by(**where)).all())


def _events(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_saving_a_register_twice_writes_each_mark_once(db, session, domain, actor):
    cs = helpers.group_session(session, patients=3)
    a, b, c = helpers.patients_of(session, cs)
    marks = {a.id: "attended", b.id: "late", c.id: "could_not_attend"}
    for _ in range(2):
        with db.transaction() as s:
            services.save_register(s, domain, cs.id, marks, actor=actor, now=utcnow())
    assert _marks(session, cohort_session_id=cs.id) == marks
    assert _count(session, Attendance) == 3
    assert len(_events(session, "attendance_marked")) == 3
    row = session.scalars(select(Attendance).where(Attendance.patient_id == a.id)).one()
    assert (row.service_key, row.starts_at, row.recorded_by_id) == ("t1-group", cs.starts_at, actor.user_id)


def test_a_correction_changes_the_mark_and_audits_old_and_new(db, session, domain, actor):
    cs = helpers.group_session(session, patients=2)
    a, b = helpers.patients_of(session, cs)
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {a.id: "dna", b.id: "attended"}, actor=actor, now=utcnow())
    with db.transaction() as s:
        saved = services.save_register(s, domain, cs.id, {a.id: "late", b.id: "attended"}, actor=actor, now=utcnow())
    assert saved.changes == [services.Change(a.id, "dna", "late")]
    assert _marks(session, cohort_session_id=cs.id) == {a.id: "late", b.id: "attended"}
    [event] = _events(session, "attendance_corrected")
    assert event.patient_id == a.id and event.detail.endswith("dna -> late")
    assert _count(session, Attendance) == 2


def test_double_submit_racing_on_one_register_saves_each_mark_once(race_db, session, domain, actor):
    cs = helpers.group_session(session, patients=4)
    patients = helpers.patients_of(session, cs)
    marks = {p.id: "dna" for p in patients[:2]} | {p.id: "attended" for p in patients[2:]}
    # Both DNA patients already missed one session of this course: this save takes them to the threshold.
    earlier = helpers.group_session(session, cohort=cs.cohort, number=2, starts_at=utcnow() - dt.timedelta(days=1))
    with race_db.transaction() as s:
        services.save_register(s, domain, earlier.id, {p.id: "dna" for p in patients[:2]}, actor=actor, now=utcnow())

    def submit():
        with race_db.transaction() as s:
            saved = services.save_register(s, domain, cs.id, marks, actor=actor, now=utcnow())
        return f"changed {len(saved.changes)}"

    outcomes = count_together([submit] * 8)
    assert outcomes == {"changed 4": 1, "changed 0": 7}, outcomes
    assert _marks(session, cohort_session_id=cs.id) == marks
    assert _count(session, Attendance) == 6
    assert len(_events(session, "attendance_marked")) == 6
    assert _count(session, DnaReview) == 2
    assert len(_events(session, "dna_review_opened")) == 2


def test_a_future_session_cannot_be_marked(db, session, domain, actor):
    cs = helpers.group_session(session, starts_at=utcnow() + dt.timedelta(hours=2))
    [patient, *_] = helpers.patients_of(session, cs)
    with pytest.raises(services.MarkingRefused) as refused, db.transaction() as s:
        services.save_register(s, domain, cs.id, {patient.id: "attended"}, actor=actor, now=utcnow())
    assert refused.value.refusal.kind == "not_yet"
    assert refused.value.refusal.opens_at == cs.starts_at - services.OPENS_BEFORE
    # Half an hour before the start the register opens, for people arriving early.
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {patient.id: "attended"}, actor=actor,
                               now=cs.starts_at - dt.timedelta(minutes=29))
    assert _marks(session) == {patient.id: "attended"}


def test_corrections_end_after_the_configured_days(db, session, domain, actor):
    assert domain.policy.attendance.correction_days == 7
    # 10am London on a Monday: corrections run to the end of the Monday a week later.
    start = dt.datetime(2025, 3, 3, 10, 0, tzinfo=LONDON).astimezone(dt.UTC)
    cs = helpers.group_session(session, starts_at=start)
    [patient, *_] = helpers.patients_of(session, cs)
    last_minute = dt.datetime(2025, 3, 10, 23, 59, tzinfo=LONDON).astimezone(dt.UTC)
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {patient.id: "dna"}, actor=actor, now=last_minute)
    too_late = dt.datetime(2025, 3, 11, 0, 0, tzinfo=LONDON).astimezone(dt.UTC)
    with pytest.raises(services.MarkingRefused) as refused, db.transaction() as s:
        services.save_register(s, domain, cs.id, {patient.id: "attended"}, actor=actor, now=too_late)
    assert refused.value.refusal == services.Refusal("closed", last_day=dt.date(2025, 3, 10))
    assert _marks(session) == {patient.id: "dna"}
    with db.transaction() as s:
        register = services.group_register(s, domain, cs.id, now=too_late)
        assert register.refusal.kind == "closed" and [r.state for r in register.rows] == ["closed"] * 3


def test_a_cancelled_session_cannot_be_marked(db, session, domain, actor):
    cs = helpers.group_session(session)
    cs.status = "cancelled"
    session.commit()
    [patient, *_] = helpers.patients_of(session, cs)
    with pytest.raises(services.MarkingRefused) as refused, db.transaction() as s:
        services.save_register(s, domain, cs.id, {patient.id: "attended"}, actor=actor, now=utcnow())
    assert refused.value.refusal.kind == "cancelled"
    assert _count(session, Attendance) == 0


def test_only_patients_with_an_active_seat_are_on_the_register(db, session, domain, actor):
    cs = helpers.group_session(session, patients=2)
    a, b = helpers.patients_of(session, cs)
    # Withdrew before the session began (after it, they stay on its register: see the test below).
    session.scalars(select(Booking).where(Booking.patient_id == b.id)).one().cancel(
        cs.starts_at - dt.timedelta(hours=1), reason="Moved")
    session.commit()
    with db.transaction() as s:
        register = services.group_register(s, domain, cs.id, now=utcnow())
        assert [r.patient.id for r in register.rows] == [a.id]
    with pytest.raises(ValueError, match="not on this list"), db.transaction() as s:
        services.save_register(s, domain, cs.id, {b.id: "attended"}, actor=actor, now=utcnow())
    with pytest.raises(ValueError, match="unknown marks"), db.transaction() as s:
        services.save_register(s, domain, cs.id, {a.id: "present"}, actor=actor, now=utcnow())


def test_a_patient_who_left_after_a_session_stays_on_its_register(db, session, domain, actor):
    # Week 3 was last night; one patient phoned this morning to withdraw and another was moved to a later
    # group, before the facilitator took the register. Both were there (or meant to be) last night.
    week_3 = helpers.group_session(session, patients=3, starts_at=utcnow() - dt.timedelta(hours=14), number=3)
    week_4 = helpers.group_session(session, cohort=week_3.cohort, number=4,
                                   starts_at=utcnow() + dt.timedelta(days=7))
    stays, withdrew, moved = helpers.patients_of(session, week_3)
    for patient, reason in ((withdrew, "Withdrew"), (moved, "Moved to another group")):
        session.scalars(select(Booking).where(Booking.patient_id == patient.id)).one().cancel(
            utcnow() - dt.timedelta(hours=2), reason=reason, by_staff=True)
    session.commit()
    with db.transaction() as s:
        register = services.group_register(s, domain, week_3.id, now=utcnow())
        rows = {r.patient.id: r.left_at for r in register.rows}
    assert set(rows) == {stays.id, withdrew.id, moved.id}
    assert rows[stays.id] is None and rows[withdrew.id] is not None
    marks = {stays.id: "attended", withdrew.id: "attended", moved.id: "dna"}
    with db.transaction() as s:
        services.save_register(s, domain, week_3.id, marks, actor=actor, now=utcnow())
    assert _marks(session, cohort_session_id=week_3.id) == marks
    # The week to come is theirs no more.
    with db.transaction() as s:
        assert [r.patient.id for r in services.group_register(s, domain, week_4.id, now=utcnow()).rows] == [stays.id]


def test_a_mark_taken_before_the_patient_left_stays_on_the_register(db, session, domain, actor):
    # Marked "cancelled with notice" as the room filled, half an hour before the start; reception then ended
    # the seat before the session began. The mark still counts, so it still shows, and can be corrected.
    cs = helpers.group_session(session, patients=2, starts_at=utcnow() + dt.timedelta(minutes=20))
    a, b = helpers.patients_of(session, cs)
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {b.id: "could_not_attend"}, actor=actor, now=utcnow())
    session.scalars(select(Booking).where(Booking.patient_id == b.id)).one().cancel(utcnow(), reason="Withdrew")
    session.commit()
    with db.transaction() as s:
        register = services.group_register(s, domain, cs.id, now=utcnow())
        assert {r.patient.id: r.mark for r in register.rows} == {a.id: None, b.id: "could_not_attend"}
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {b.id: "late_cancellation"}, actor=actor, now=utcnow())
    assert _marks(session, cohort_session_id=cs.id) == {b.id: "late_cancellation"}


@pytest.mark.parametrize("mark", ["dna", "late"])
def test_nobody_is_marked_late_or_absent_before_the_session_starts(db, session, domain, actor, mark):
    # The register opens half an hour early, for people as they arrive; but nobody is late, nor has not come,
    # until it starts.
    cs = helpers.group_session(session, patients=2, starts_at=utcnow() + dt.timedelta(minutes=20))
    a, b = helpers.patients_of(session, cs)
    with pytest.raises(services.MarkingRefused) as refused, db.transaction() as s:
        services.save_register(s, domain, cs.id, {a.id: "attended", b.id: mark}, actor=actor, now=utcnow())
    assert (refused.value.refusal.kind, refused.value.refusal.mark, refused.value.refusal.opens_at) == (
        "mark_not_yet", mark, cs.starts_at)
    assert _count(session, Attendance) == 0
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {a.id: "attended", b.id: "could_not_attend"}, actor=actor,
                               now=utcnow())
        services.save_register(s, domain, cs.id, {b.id: mark}, actor=actor, now=cs.starts_at)
    assert _marks(session, cohort_session_id=cs.id) == {a.id: "attended", b.id: mark}
    # Nor at a 1:1 appointment.
    patient = factories.create_patient(session)
    clinician = factories.create_staff(session, role=Role.CLINICIAN, enrolled=False)
    soon = helpers.appointment(session, patient, clinician=clinician, starts_at=utcnow() + dt.timedelta(minutes=10))
    day = soon.starts_at.astimezone(LONDON).date()
    with pytest.raises(services.MarkingRefused) as refused, db.transaction() as s:
        services.save_day_list(s, domain, clinician.id, day, {soon.id: mark}, actor=actor, now=utcnow())
    assert (refused.value.refusal.kind, refused.value.refusal.mark) == ("mark_not_yet", mark)
    assert refused.value.row.key == soon.id
    assert _count(session, Attendance) == 2


def test_two_dnas_in_a_course_open_exactly_one_review(db, session, domain, actor):
    first = helpers.group_session(session, patients=2, starts_at=utcnow() - dt.timedelta(days=2))
    a, b = helpers.patients_of(session, first)
    second = helpers.group_session(session, cohort=first.cohort, number=2, starts_at=utcnow() - dt.timedelta(days=1))
    third = helpers.group_session(session, cohort=first.cohort, number=3, starts_at=utcnow())
    with db.transaction() as s:
        saved = services.save_register(s, domain, first.id, {a.id: "dna", b.id: "late_cancellation"}, actor=actor,
                                       now=utcnow())
        assert saved.reviews_opened == []
    with db.transaction() as s:
        saved = services.save_register(s, domain, second.id, {a.id: "dna", b.id: "could_not_attend"}, actor=actor,
                                       now=utcnow())
        assert len(saved.reviews_opened) == 1
    with db.transaction() as s:
        saved = services.save_register(s, domain, third.id, {a.id: "dna", b.id: "late_cancellation"}, actor=actor,
                                       now=utcnow())
        assert saved.reviews_opened == []
    [opened] = session.scalars(select(DnaReview)).all()
    assert (opened.patient_id, opened.service_key, opened.cohort_id, opened.status) == (
        a.id, "t1-group", first.cohort_id, "open")
    assert opened.trigger.startswith("2 did not attend")
    [event] = _events(session, "dna_review_opened")
    assert event.patient_id == a.id


def test_a_review_whose_dnas_were_corrected_is_withdrawn_and_settles_nothing(db, session, domain, actor):
    # A facilitator marked the wrong person "did not attend" twice, a review opened, then they corrected one.
    first = helpers.group_session(session, patients=1, starts_at=utcnow() - dt.timedelta(days=2))
    [a] = helpers.patients_of(session, first)
    second = helpers.group_session(session, cohort=first.cohort, number=2, starts_at=utcnow() - dt.timedelta(days=1))
    for cs in (first, second):
        with db.transaction() as s:
            services.save_register(s, domain, cs.id, {a.id: "dna"}, actor=actor, now=utcnow())
    with db.transaction() as s:
        services.save_register(s, domain, first.id, {a.id: "could_not_attend"}, actor=actor, now=utcnow())
    [withdrawn] = session.scalars(select(DnaReview)).all()
    assert (withdrawn.status, withdrawn.decision, withdrawn.withdrawn) == ("closed", None, True)
    assert review.count_open(session) == 0
    [event] = _events(session, "dna_review_withdrawn")
    assert (event.patient_id, event.actor_user_id) == (a.id, actor.user_id)
    # A withdrawal is no decision: the DNA still on the register counts, and a second one opens a new review.
    third = helpers.group_session(session, cohort=first.cohort, number=3, starts_at=utcnow())
    with db.transaction() as s:
        assert len(services.save_register(s, domain, third.id, {a.id: "dna"}, actor=actor,
                                          now=utcnow()).reviews_opened) == 1


def test_a_correction_that_leaves_the_threshold_met_keeps_the_review_open(db, session, domain, actor):
    sessions_ = [helpers.group_session(session, patients=1, starts_at=utcnow() - dt.timedelta(days=3))]
    [a] = helpers.patients_of(session, sessions_[0])
    sessions_ += [helpers.group_session(session, cohort=sessions_[0].cohort, number=n,
                                        starts_at=utcnow() - dt.timedelta(days=4 - n)) for n in (2, 3)]
    for cs in sessions_:
        with db.transaction() as s:
            services.save_register(s, domain, cs.id, {a.id: "dna"}, actor=actor, now=utcnow())
    with db.transaction() as s:
        services.save_register(s, domain, sessions_[0].id, {a.id: "attended"}, actor=actor, now=utcnow())
    assert review.count_open(session) == 1
    assert _events(session, "dna_review_withdrawn") == []


def test_a_1_to_1_review_is_withdrawn_when_its_run_of_dnas_is_corrected(db, session, domain):
    patient = factories.create_patient(session)
    clinician, appointments = _appointments(session, patient, ["dna", "dna"])
    actor = Actor(user_id=clinician.id, role="clinician")
    assert len(_mark_each(db, domain, clinician, appointments, ["dna", "dna"], actor)) == 1
    _mark_each(db, domain, clinician, appointments[-1:], ["attended"], actor)
    [withdrawn] = session.scalars(select(DnaReview)).all()
    assert withdrawn.withdrawn


def _appointments(session, patient, marks_oldest_first, *, service_key="t1-physio"):
    clinician = factories.create_staff(session, role=Role.CLINICIAN, enrolled=False)
    found = []
    for days_ago, _mark in zip(range(len(marks_oldest_first), 0, -1), marks_oldest_first, strict=True):
        found.append(helpers.appointment(session, patient, starts_at=utcnow() - dt.timedelta(days=days_ago),
                                         clinician=clinician, service_key=service_key))
    return clinician, found


def _mark_each(db, domain, clinician, appointments, marks, actor) -> list[int]:
    opened = []
    for appointment, mark in zip(appointments, marks, strict=True):
        with db.transaction() as s:
            day = appointment.slot.starts_at.astimezone(LONDON).date()
            saved = services.save_day_list(s, domain, clinician.id, day, {appointment.id: mark}, actor=actor,
                                           now=utcnow())
            opened += saved.reviews_opened
    return opened


@pytest.mark.parametrize(("marks", "opens"), [
    (["dna", "dna"], True),
    (["dna", "attended", "dna"], False),
    # Cancellations neither count nor break a run of DNAs.
    (["dna", "late_cancellation", "could_not_attend", "dna"], True),
    (["late_cancellation", "late_cancellation", "dna"], False),
    (["dna", "late"], False),
])
def test_dnas_in_a_row_at_1_to_1_appointments_open_a_review(db, session, domain, marks, opens):
    patient = factories.create_patient(session)
    clinician, appointments = _appointments(session, patient, marks)
    actor = Actor(user_id=clinician.id, role="clinician")
    opened = _mark_each(db, domain, clinician, appointments, marks, actor)
    assert len(opened) == (1 if opens else 0)
    assert _count(session, DnaReview) == (1 if opens else 0)


def test_dnas_at_another_service_do_not_make_a_run(db, session, domain):
    patient = factories.create_patient(session)
    clinician, [physio] = _appointments(session, patient, ["dna"])
    _, [pharmacy] = _appointments(session, patient, ["dna"], service_key="t1-pharmacy")
    actor = Actor(user_id=clinician.id, role="admin")
    assert _mark_each(db, domain, clinician, [physio], ["dna"], actor) == []
    assert _mark_each(db, domain, pharmacy.slot.clinician, [pharmacy], ["dna"], actor) == []


def test_counts_keep_dna_late_cancellation_and_could_not_attend_apart(db, session, domain, actor):
    patient = factories.create_patient(session)
    sessions_ = []
    cs = helpers.group_session(session, booked=[patient], starts_at=utcnow() - dt.timedelta(days=4))
    sessions_.append(cs)
    for number, days in ((2, 3), (3, 2), (4, 1), (5, 0)):
        sessions_.append(helpers.group_session(session, cohort=cs.cohort, number=number,
                                               starts_at=utcnow() - dt.timedelta(days=days, hours=1)))
    for cohort_session, mark in zip(sessions_, ["attended", "late", "dna", "late_cancellation", "could_not_attend"],
                                    strict=True):
        with db.transaction() as s:
            services.save_register(s, domain, cohort_session.id, {patient.id: mark}, actor=actor, now=utcnow())
    clinician, [one] = _appointments(session, patient, ["dna"])
    _mark_each(db, domain, clinician, [one], ["dna"], actor)
    with db.transaction() as s:
        summary = services.attendance_summary(s, patient.id)
        history = services.attendance_history(s, patient.id)
    assert summary == [
        services.ServiceAttendance("t1-group", attended=1, late=1, dna=1, could_not_attend=1, late_cancellation=1),
        services.ServiceAttendance("t1-physio", dna=1),
    ]
    # The appointment was a day ago, between the fourth and fifth sessions.
    assert [h.mark for h in history] == ["could_not_attend", "dna", "late_cancellation", "dna", "late", "attended"]


def test_day_list_refuses_an_appointment_later_today_and_saves_nothing(db, session, domain):
    patient, other = factories.create_patient(session), factories.create_patient(session)
    clinician = factories.create_staff(session, role=Role.CLINICIAN, enrolled=False)
    # Noon in London a week from now: both appointments fall on one day whatever the hour the test runs.
    day = utcnow().astimezone(LONDON).date() + dt.timedelta(days=7)
    now = dt.datetime.combine(day, dt.time(12), tzinfo=LONDON).astimezone(dt.UTC)
    earlier = helpers.appointment(session, patient, starts_at=now - dt.timedelta(minutes=1), clinician=clinician)
    later = helpers.appointment(session, other, starts_at=now + dt.timedelta(hours=3), clinician=clinician)
    actor = Actor(user_id=clinician.id, role="clinician")
    with pytest.raises(services.MarkingRefused) as refused, db.transaction() as s:
        services.save_day_list(s, domain, clinician.id, day, {earlier.id: "attended", later.id: "dna"}, actor=actor,
                               now=now)
    assert refused.value.row.key == later.id and refused.value.refusal.kind == "not_yet"
    assert _count(session, Attendance) == 0
    with db.transaction() as s:
        services.save_day_list(s, domain, clinician.id, day, {earlier.id: "attended"}, actor=actor, now=now)
        listed = services.day_list(s, domain, clinician.id, day, now=now)
        assert [(r.key, r.mark, r.state) for r in listed.rows] == [(earlier.id, "attended", "open"),
                                                                   (later.id, None, "not_yet")]


def test_today_lists_my_groups_and_my_clinic_and_an_admin_sees_all(db, session, domain, facilitator):
    mine = helpers.group_session(session, facilitators=(facilitator,))
    theirs = helpers.group_session(session)
    helpers.group_session(session, starts_at=utcnow() - dt.timedelta(days=2), facilitators=(facilitator,))
    patient = factories.create_patient(session)
    my_appointment = helpers.appointment(session, patient, clinician=facilitator)
    helpers.appointment(session, patient, starts_at=utcnow() + dt.timedelta(days=2), clinician=facilitator)
    admin = factories.create_staff(session, role=Role.ADMIN, enrolled=False)
    with db.transaction() as s:
        mine_today = services.sessions_today(s, facilitator, now=utcnow())
        assert [g.cohort_session.id for g in mine_today.groups] == [mine.id]
        assert [(g.patients, g.marked) for g in mine_today.groups] == [(3, 0)]
        assert [(c.clinician.id, c.appointments) for c in mine_today.clinics] == [(facilitator.id, 1)]
        everyone = services.sessions_today(s, admin, now=utcnow())
        assert {g.cohort_session.id for g in everyone.groups} == {mine.id, theirs.id}
    assert my_appointment.slot.clinician_id == facilitator.id


def test_today_counts_a_patient_who_left_after_being_marked_as_on_the_register(db, session, domain, facilitator,
                                                                               actor):
    cs = helpers.group_session(session, facilitators=(facilitator,), starts_at=utcnow() - dt.timedelta(minutes=5))
    a, b, c = helpers.patients_of(session, cs)
    with db.transaction() as s:
        services.save_register(s, domain, cs.id, {a.id: "dna", b.id: "attended"}, actor=actor, now=utcnow())
    session.scalars(select(Booking).where(Booking.patient_id == a.id)).one().cancel(utcnow(), reason="Withdrew")
    session.commit()
    with db.transaction() as s:
        [today] = services.sessions_today(s, facilitator, now=utcnow()).groups
        # Not "all 2 marked": Patient c is still to mark.
        assert (today.patients, today.marked) == (3, 2)
        assert len(services.group_register(s, domain, cs.id, now=utcnow()).rows) == 3


def test_deciding_a_review(db, session, domain, facilitator, actor):
    patient = factories.create_patient(session)
    cs = helpers.group_session(session, booked=[patient], starts_at=utcnow() - dt.timedelta(days=3))
    second = helpers.group_session(session, cohort=cs.cohort, number=2, starts_at=utcnow() - dt.timedelta(days=2))
    for target in (cs, second):
        with db.transaction() as s:
            services.save_register(s, domain, target.id, {patient.id: "dna"}, actor=actor, now=utcnow())
    opened = session.scalars(select(DnaReview)).one()
    with pytest.raises(ValueError), db.transaction() as s:
        review.decide(s, opened.id, "contacted", "   ", actor=actor, now=utcnow())
    with pytest.raises(ValueError), db.transaction() as s:
        review.decide(s, opened.id, "banished", "Because", actor=actor, now=utcnow())
    with db.transaction() as s:
        review.decide(s, opened.id, "contacted", "Left a voicemail", actor=actor, now=utcnow())
    session.expire_all()
    assert session.get(DnaReview, opened.id).status == "open"
    with db.transaction() as s:
        review.decide(s, opened.id, "kept_on", "Car broke down twice; keen to continue", actor=actor, now=utcnow())
    session.expire_all()
    closed = session.get(DnaReview, opened.id)
    assert (closed.status, closed.decision) == ("closed", "kept_on")
    assert [a.action for a in closed.actions] == ["contacted", "kept_on"]
    with pytest.raises(review.ReviewClosed), db.transaction() as s:
        review.decide(s, opened.id, "discharged", "Too late", actor=actor, now=utcnow())
    assert [e.action for e in _events(session, "dna_review_contacted") + _events(session, "dna_review_kept_on")] == [
        "dna_review_contacted", "dna_review_kept_on"]
    # Counting starts again after the decision: the two DNAs already decided do not open another review...
    third = helpers.group_session(session, cohort=cs.cohort, number=3, starts_at=utcnow() - dt.timedelta(minutes=2))
    with db.transaction() as s:
        assert services.save_register(s, domain, third.id, {patient.id: "dna"}, actor=actor,
                                      now=utcnow()).reviews_opened == []
    # ...two more do, and a discharge records the reason on the patient.
    fourth = helpers.group_session(session, cohort=cs.cohort, number=4, starts_at=utcnow() - dt.timedelta(minutes=1))
    with db.transaction() as s:
        [second_id] = services.save_register(s, domain, fourth.id, {patient.id: "dna"}, actor=actor,
                                             now=utcnow()).reviews_opened
    assert session.get(type(patient), patient.id).discharged_at is None
    with db.transaction() as s:
        review.decide(s, second_id, "discharged", "Does not wish to continue; GP informed", actor=actor, now=utcnow())
    session.expire_all()
    discharged = session.get(type(patient), patient.id)
    assert discharged.discharged_at is not None
    assert discharged.discharge_reason == "Does not wish to continue; GP informed"
    with db.transaction() as s:
        history = review.review_history(s, patient.id)
        assert [(r.id, r.decision) for r in history] == [(second_id, "discharged"), (opened.id, "kept_on")]
        assert [a.note for a in history[1].actions] == ["Left a voicemail", "Car broke down twice; keen to continue"]


def test_a_dna_recorded_after_a_decision_counts_even_for_a_session_before_it(db, session, domain, actor):
    patient = factories.create_patient(session)
    weeks = [helpers.group_session(session, booked=[patient], starts_at=utcnow() - dt.timedelta(days=3))]
    for number, days in ((2, 2), (3, 1)):
        weeks.append(helpers.group_session(session, cohort=weeks[0].cohort, number=number,
                                           starts_at=utcnow() - dt.timedelta(days=days)))
    weeks.append(helpers.group_session(session, cohort=weeks[0].cohort, number=4, starts_at=utcnow()))
    first, second, third, fourth = weeks
    for week in (first, second):
        with db.transaction() as s:
            services.save_register(s, domain, week.id, {patient.id: "dna"}, actor=actor,
                                   now=second.starts_at + dt.timedelta(hours=1))
    opened = session.scalars(select(DnaReview)).one()
    # Kept on the morning after week 3, before its register was taken.
    with db.transaction() as s:
        review.decide(s, opened.id, "kept_on", "Unwell; keen to continue", actor=actor,
                      now=third.starts_at + dt.timedelta(hours=14))
    # Week 3 was missed too, and so is week 4: two DNAs the clinician has not seen.
    with db.transaction() as s:
        assert services.save_register(s, domain, third.id, {patient.id: "dna"}, actor=actor,
                                      now=utcnow()).reviews_opened == []
    with db.transaction() as s:
        assert len(services.save_register(s, domain, fourth.id, {patient.id: "dna"}, actor=actor,
                                          now=utcnow()).reviews_opened) == 1


def test_a_1_to_1_dna_recorded_after_a_decision_counts_towards_the_next_run(db, session, domain):
    patient = factories.create_patient(session)
    clinician, appointments = _appointments(session, patient, ["dna", "dna", "dna", "dna"])
    actor = Actor(user_id=clinician.id, role="clinician")
    for appointment in appointments[:2]:
        with db.transaction() as s:
            services.save_day_list(s, domain, clinician.id, appointment.starts_at.astimezone(LONDON).date(),
                                   {appointment.id: "dna"}, actor=actor,
                                   now=appointments[1].starts_at + dt.timedelta(hours=1))
    opened = session.scalars(select(DnaReview)).one()
    # Decided an hour after the third appointment, which was marked later.
    with db.transaction() as s:
        review.decide(s, opened.id, "kept_on", "Spoke to them; will come", actor=actor,
                      now=appointments[2].starts_at + dt.timedelta(hours=1))
    assert len(_mark_each(db, domain, clinician, appointments[2:], ["dna", "dna"], actor)) == 1


def test_the_system_never_discharges_anyone_by_itself(db, session, domain, actor):
    patient = factories.create_patient(session)
    cs = helpers.group_session(session, booked=[patient], starts_at=utcnow() - dt.timedelta(days=5))
    for number in range(2, 6):
        helpers.group_session(session, cohort=cs.cohort, number=number,
                              starts_at=utcnow() - dt.timedelta(days=5 - number + 1, hours=1))
    session.expire_all()
    for cohort_session in sorted(cs.cohort.sessions, key=lambda x: x.number)[:5]:
        with db.transaction() as s:
            services.save_register(s, domain, cohort_session.id, {patient.id: "dna"}, actor=actor, now=utcnow())
    session.expire_all()
    assert session.get(type(patient), patient.id).discharged_at is None
    assert _count(session, DnaReview) == 1


def test_the_demo_facilitator_has_a_register_today_and_a_review_waits(session, domain):
    from portal import demo_data
    from portal.auth.models import User
    from portal.dates import london_today

    now = utcnow()
    demo_data.load(session, domain, today=london_today(now), now=now, base_url="http://127.0.0.1")
    session.commit()
    facilitator = session.scalars(select(User).where(User.email == "facilitator@demo.portal.nhs.uk")).one()
    clinician = session.scalars(select(User).where(User.email == "clinician@demo.portal.nhs.uk")).one()
    today = services.sessions_today(session, facilitator, now=now)
    [group] = today.groups
    assert (group.patients, group.marked) == (5, 0)
    register = services.group_register(session, domain, group.cohort_session.id, now=now)
    assert register.refusal is None and any(r.patient.communication_need_tags for r in register.rows)
    assert _count(session, Attendance) == 10
    [waiting] = review.open_reviews(session)
    assert waiting.patient.full_name == "Yusuf Demir"
    from portal.appointments.models import AvailabilityTemplate

    assert set(session.scalars(select(AvailabilityTemplate.clinician_id))) == {clinician.id}
