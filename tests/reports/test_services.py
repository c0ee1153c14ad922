"""Each report against a small hand-built dataset whose answers were worked out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.reports import services
from portal.reports.services import Filters, percentile
from tests.reports import data

JAN, FEB, MAR, APR = (dt.date(2026, m, 1) for m in (1, 2, 3, 4))
Q1 = Filters(first_month=JAN, last_month=MAR)


def _by_label(report):
    return {row["label"]: row for row in report.rows}


def test_percentile_is_linear_between_closest_ranks():
    # Worked by hand: ranks 0..4; the median is rank 2; the 90th percentile is rank 3.6, 60% of the way from
    # 10 to 30.
    assert percentile([2, 4, 6, 10, 30], 0.5) == 6
    assert percentile([2, 4, 6, 10, 30], 0.9) == pytest.approx(22.0)
    assert percentile([20, 25, 40, 41], 0.5) == 32.5
    assert percentile([20, 25, 40, 41], 0.9) == pytest.approx(40.7)
    assert percentile([7], 0.9) == 7
    assert percentile([], 0.5) is None


def test_filters_refuse_a_backwards_or_too_long_range():
    with pytest.raises(ValueError):
        Filters(first_month=MAR, last_month=JAN)
    with pytest.raises(ValueError):
        Filters(first_month=dt.date(2020, 1, 1), last_month=MAR)
    with pytest.raises(ValueError):
        Filters(first_month=dt.date(2026, 1, 2), last_month=MAR)
    assert services.default_filters(dt.date(2026, 11, 25)).months[0] == dt.date(2025, 12, 1)
    assert len(services.default_filters(dt.date(2026, 11, 25)).months) == 12


def test_patients_triaged_by_month_tier_and_team(session, domain):
    data.patient(session, triaged=dt.date(2026, 1, 5))
    data.patient(session, triaged=dt.date(2026, 1, 31), tier=2, team="whittington")
    data.patient(session, triaged=dt.date(2026, 2, 1), tier=2, team="haringey")
    data.patient(session, triaged=dt.date(2026, 3, 31))
    data.patient(session, triaged=dt.date(2025, 12, 31))  # before the range
    data.patient(session, triaged=dt.date(2026, 4, 1), tier=2, team="haringey")  # after it
    data.patient(session, triaged=None)  # registered before triage dates were kept

    report = services.patients_triaged(session, domain, Q1)
    rows = _by_label(report)
    assert [row["label"] for row in report.rows] == ["Jan 2026", "Feb 2026", "Mar 2026"]
    assert (rows["Jan 2026"]["tier1"], rows["Jan 2026"]["tier2"], rows["Jan 2026"]["total"]) == (1, 1, 2)
    assert (rows["Feb 2026"]["tier1"], rows["Feb 2026"]["tier2"], rows["Feb 2026"]["total"]) == (0, 1, 1)
    assert rows["Mar 2026"]["total"] == 1
    assert {(d["label"], d["team"], d["triaged"]) for d in report.detail} == {
        ("Jan 2026", "Tier 1 (no team)", 1), ("Jan 2026", "Whittington", 1), ("Feb 2026", "Haringey", 1),
        ("Mar 2026", "Tier 1 (no team)", 1)}

    haringey = services.patients_triaged(session, domain, Filters(JAN, MAR, team="haringey"))
    assert [row["total"] for row in haringey.rows] == [0, 1, 0]


def test_waits_median_and_90th_percentile_to_first_booking_and_attendance(session, domain):
    recorder = data.staff(session)
    clinician = data.staff(session)
    triaged = dt.date(2026, 1, 10)
    group = data.cohort(session, first=dt.date(2026, 3, 2))
    people = [data.patient(session, triaged=triaged) for _ in range(6)]
    # First bookings 2, 4, 6, 10 and 30 days after triage (the sixth patient has not booked). The first
    # patient booked a seat on day 10 but an appointment on day 2: the first booking is day 2.
    data.booking(session, people[0], group, at=data.london(triaged + dt.timedelta(days=10)))
    first = data.appointment(session, people[0], booked=data.london(triaged + dt.timedelta(days=2)),
                             starts=data.london(triaged + dt.timedelta(days=15), 10), clinician=clinician)
    later = data.appointment(session, people[0], booked=data.london(triaged + dt.timedelta(days=3)),
                             starts=data.london(triaged + dt.timedelta(days=20), 10), clinician=clinician)
    attended = {}
    for person, days in zip(people[1:5], (4, 6, 10, 30), strict=True):
        attended[person.id] = data.appointment(
            session, person, booked=data.london(triaged + dt.timedelta(days=days)),
            starts=data.london(triaged + dt.timedelta(days=days + 15), 10), clinician=clinician)
    # Attendances on days 20, 25, 40 and 41; a DNA on day 15 does not count, nor does a booking at 23:30 UTC
    # (00:30 the next day in London: it is counted on the London day).
    data.mark(session, people[0], first, first.slot.starts_at, "dna", recorder)
    data.mark(session, people[0], later, later.slot.starts_at, "attended", recorder)  # day 20
    for person, days in zip(people[1:5], (25, 40, 41), strict=False):
        appointment = attended[person.id]
        data.mark(session, person, appointment, data.london(triaged + dt.timedelta(days=days), 10), "attended",
                  recorder)

    report = services.waits(session, domain, Q1)
    january = _by_label(report)["Jan 2026"]
    assert january["triaged"] == 6
    assert (january["booked"], january["booking_median"]) == (5, 6)
    assert january["booking_p90"] == pytest.approx(22.0)
    assert (january["attended"], january["attendance_median"]) == (4, 32.5)
    assert january["attendance_p90"] == pytest.approx(40.7)
    assert _by_label(report)["Feb 2026"]["booked"] == 0
    assert _by_label(report)["Feb 2026"]["booking_median"] is None

    # Only the course: one patient booked a seat, on day 10, and nobody attended a group session.
    course = _by_label(services.waits(session, domain, Filters(JAN, MAR, service="t1-group")))["Jan 2026"]
    assert (course["booked"], course["booking_median"], course["attended"]) == (1, 10, 0)


def test_a_booking_just_after_midnight_in_summer_counts_on_the_london_day(session, domain):
    clinician = data.staff(session)
    person = data.patient(session, triaged=dt.date(2026, 4, 1))
    # 23:30 UTC on 1 April is 00:30 on 2 April in London (BST): one day after triage, not zero.
    data.appointment(session, person, booked=dt.datetime(2026, 4, 1, 23, 30, tzinfo=dt.UTC),
                     starts=data.london(dt.date(2026, 4, 20), 10), clinician=clinician)
    april = services.waits(session, domain, Filters(APR, APR)).rows[0]
    assert april["booking_median"] == 1


def test_cohort_fill_rate_by_month_of_first_session(session, domain):
    data.cohort(session, first=dt.date(2026, 1, 5), capacity=10, taken=10)
    data.cohort(session, first=dt.date(2026, 1, 26), capacity=12, taken=6)
    data.cohort(session, first=dt.date(2026, 1, 12), capacity=12, taken=0, status="cancelled")  # left out
    data.cohort(session, first=dt.date(2026, 2, 2), service_key="t2-programme", team="haringey", capacity=8,
                taken=2)
    rows = _by_label(services.cohort_fill(session, domain, Q1))
    # January: 16 seats taken of 22 places = 72.7%.
    assert (rows["Jan 2026"]["cohorts"], rows["Jan 2026"]["places"], rows["Jan 2026"]["taken"]) == (2, 22, 16)
    assert rows["Jan 2026"]["fill"] == 72.7
    assert rows["Feb 2026"]["fill"] == 25.0
    assert rows["Mar 2026"]["fill"] is None
    haringey = _by_label(services.cohort_fill(session, domain, Filters(JAN, MAR, team="haringey")))
    assert haringey["Jan 2026"]["cohorts"] == 0 and haringey["Feb 2026"]["cohorts"] == 1


def test_attendance_and_dna_rates_leave_out_cancellations_with_notice(session, domain):
    recorder = data.staff(session)
    clinician = data.staff(session)
    person = data.patient(session, triaged=dt.date(2026, 1, 2))
    marks = ["attended"] * 5 + ["late", "dna", "dna", "late_cancellation", "could_not_attend"]
    for day, mark in enumerate(marks, start=1):
        starts = data.london(dt.date(2026, 3, day), 10)
        appointment = data.appointment(session, person, booked=starts - dt.timedelta(days=7), starts=starts,
                                       clinician=clinician)
        data.mark(session, person, appointment, starts, mark, recorder)
    # 23:30 UTC on 31 March is 00:30 on 1 April in London: an April session, not a March one.
    starts = dt.datetime(2026, 3, 31, 23, 30, tzinfo=dt.UTC)
    appointment = data.appointment(session, person, booked=starts - dt.timedelta(days=7), starts=starts,
                                   clinician=clinician)
    data.mark(session, person, appointment, starts, "dna", recorder)

    rows = _by_label(services.attendance(session, domain, Filters(MAR, APR)))
    march = rows["Mar 2026"]
    # Expected: 10 marks less 1 cancelled with notice = 9; came: 5 attended + 1 late = 6 (66.7%); DNA 2 (22.2%).
    assert (march["attended"], march["late"], march["dna"], march["could_not_attend"]) == (5, 1, 2, 1)
    assert (march["expected"], march["attendance_rate"], march["dna_rate"]) == (9, 66.7, 22.2)
    assert (rows["Apr 2026"]["dna"], rows["Apr 2026"]["dna_rate"]) == (1, 100.0)
    assert services.attendance(session, domain, Filters(MAR, APR, service="t1-group")).rows[0]["expected"] == 0


def test_texts_by_status_with_segments_billed_and_cost(session, domain):
    person = data.patient(session, triaged=dt.date(2026, 1, 2))
    at = data.london(dt.date(2026, 2, 10))
    data.text(session, person, at=at, status="delivered")
    data.text(session, person, at=at, status="delivered", body="x" * 161)  # two segments
    data.text(session, person, at=at, status="sent", body="y" * 307)  # three: 307 = 153 + 153 + 1
    data.text(session, person, at=at, status="undelivered")  # billed, failed
    data.text(session, person, at=at, status="failed", sid=False)  # refused before sending: not billed
    data.text(session, person, at=at, status="unknown", sid=False)  # billed, to be safe
    data.text(session, person, at=at, status="pending", sid=False)
    data.text(session, person, at=at, status="cancelled", sid=False)
    data.text(session, None, at=data.london(dt.date(2026, 3, 1)), status="delivered")

    rows = _by_label(services.texts(session, domain, Q1))
    february = rows["Feb 2026"]
    assert (february["written"], february["sent"], february["failed"], february["unknown"]) == (8, 3, 2, 1)
    assert (february["waiting"], february["cancelled"]) == (1, 1)
    # Segments billed: 1 + 2 + 3 + 1 (undelivered) + 1 (unknown) = 8, at 4p each (config/policy.toml) = £0.32.
    assert february["segments"] == 8
    assert february["cost"] == pytest.approx(8 * domain.policy.sms.price_per_segment_pence / 100)
    assert rows["Mar 2026"]["sent"] == 1
    # The invitation-like text with no patient and no booking belongs to no team and no service.
    assert services.texts(session, domain, Filters(MAR, MAR, team="whittington")).rows[0]["written"] == 0
    assert services.texts(session, domain, Filters(MAR, MAR, service="t1-group")).rows[0]["written"] == 0


def test_texts_about_a_booking_count_for_its_service(session, domain):
    person = data.patient(session, triaged=dt.date(2026, 1, 2))
    seat = data.booking(session, person, data.cohort(session, first=dt.date(2026, 3, 2)),
                        at=data.london(dt.date(2026, 2, 1)))
    data.text(session, person, at=data.london(dt.date(2026, 2, 1)), status="delivered", booking_row=seat)
    data.text(session, person, at=data.london(dt.date(2026, 2, 1)), status="delivered")
    assert services.texts(session, domain, Filters(FEB, FEB, service="t1-group")).rows[0]["written"] == 1
    assert services.texts(session, domain, Filters(FEB, FEB, service="t1-physio")).rows[0]["written"] == 0


def test_questionnaire_change_is_the_mean_of_paired_differences(session, domain):
    a, b, c = (data.patient(session, triaged=dt.date(2025, 11, 1)) for _ in range(3))
    base = data.london(dt.date(2025, 12, 1))
    end = data.london(dt.date(2026, 2, 15))
    plan = "course-t1-group"
    # PHQ-9: 15 -> 9 (-6) and 10 -> 8 (-2): mean change -4, mean baseline 12.5.
    for who, before, after in ((a, 15, 9), (b, 10, 8)):
        data.response(session, who, instrument="phq9", plan=plan, occasion="baseline", score=before, at=base)
        data.response(session, who, instrument="phq9", plan=plan, occasion="end", score=after, at=end)
    # No baseline: not paired. A draft end: not counted.
    data.response(session, c, instrument="phq9", plan=plan, occasion="end", score=3, at=end)
    data.response(session, c, instrument="gad7", plan=plan, occasion="baseline", score=12, at=base)
    data.response(session, c, instrument="gad7", plan=plan, occasion="end", score=0, at=end, status="draft")
    # A follow-up on the general set: pain intensity 6 -> 7 (+1).
    data.response(session, a, instrument="pain_intensity", plan="general", occasion="baseline", score=6, at=base)
    data.response(session, a, instrument="pain_intensity", plan="general", occasion="follow_up", score=7, at=end)

    report = services.questionnaire_change(session, domain, Q1)
    rows = {row["instrument"]: row for row in report.rows}
    assert set(rows) == {"phq9", "pain_intensity"}
    assert (rows["phq9"]["end_pairs"], rows["phq9"]["end_change"], rows["phq9"]["end_baseline"]) == (2, -4, 12.5)
    assert rows["phq9"]["follow_up_pairs"] == 0 and rows["phq9"]["follow_up_change"] is None
    assert (rows["pain_intensity"]["follow_up_pairs"], rows["pain_intensity"]["follow_up_change"]) == (1, 1)
    assert [r["instrument"] for r in report.rows] == ["pain_intensity", "phq9"]  # the instruments' own order

    course_only = services.questionnaire_change(session, domain, Filters(JAN, MAR, service="t1-group"))
    assert [row["instrument"] for row in course_only.rows] == ["phq9"]
    assert services.questionnaire_change(session, domain, Filters(MAR, MAR)).rows == []


def test_percentiles_from_counts_match_those_of_the_values():
    values = [2, 4, 4, 6, 10, 10, 10, 30]
    counts = [(2, 1), (4, 2), (6, 1), (10, 3), (30, 1)]
    for fraction in (0, 0.25, 0.5, 0.9, 1):
        assert services.percentile_of_counts(counts, fraction) == pytest.approx(percentile(values, fraction))
    assert services.percentile_of_counts([], 0.5) is None


def test_summer_time_spans_agree_with_the_time_zone_database():
    for start, end in services.summer_time_spans(2020, 2030):
        for moment, summer in ((start - dt.timedelta(minutes=1), False), (start, True),
                               (end - dt.timedelta(minutes=1), True), (end, False)):
            assert bool(moment.astimezone(data.LONDON).dst()) is summer, moment


def test_a_new_episode_after_a_discharge_is_paired_with_its_own_baseline_and_counts_for_its_course(session, domain):
    """After a new referral the sets carry the episode ("course-t1-group@2026-01-05:end"): paired with that
    episode's baseline, never the earlier one, and still the course's in the service filter and the detail."""
    who = data.patient(session, triaged=dt.date(2025, 6, 1))
    data.response(session, who, instrument="phq9", plan="course-t1-group", occasion="baseline", score=20,
                  at=data.london(dt.date(2025, 7, 1)))
    episode = "course-t1-group@2026-01-05"
    data.response(session, who, instrument="phq9", plan=episode, occasion="baseline", score=12,
                  at=data.london(dt.date(2026, 1, 10)))
    data.response(session, who, instrument="phq9", plan=episode, occasion="end", score=9,
                  at=data.london(dt.date(2026, 3, 1)))

    report = services.questionnaire_change(session, domain, Filters(JAN, MAR, service="t1-group"))
    row = {row["instrument"]: row for row in report.rows}["phq9"]
    assert (row["end_pairs"], row["end_change"], row["end_baseline"]) == (1, -3, 12)
    labels = {d["service"] for d in report.detail}
    assert len(labels) == 1 and labels.pop().startswith(domain.catalogue.get("t1-group").name)
