"""Reception search: what each kind of text finds, the page around it, and the query plans (every kind of search
answered from an index, on SQLite and on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import event, insert, text

from portal.audit.models import AuditEvent
from portal.demo_data import demo_nhs_numbers
from portal.patients.models import Patient, name_key
from portal.patients.search import SearchInputError, search_patients
from tests import factories
from tests.pages import get_page, parse

_numbers = demo_nhs_numbers(start=800_000)


def _patient(session, given: str, family: str, **kw) -> Patient:
    return factories.create_patient(session, given_name=given, family_name=family, nhs_number=next(_numbers), **kw)


# --- What each kind of text finds -----------------------------------------------------------------------------


def test_names_match_from_their_start_whatever_the_case_accents_and_punctuation(session):
    obrien = _patient(session, "Zoë", "O'Brien-Smyth")
    smith = _patient(session, "John", "Smith")
    smithson = _patient(session, "Anna", "Smithson")
    _patient(session, "Joan", "Blacksmith")  # "smith" inside the name: not a prefix, not found

    assert [p.id for p in search_patients(session, "smith")] == [smith.id, smithson.id]
    assert [p.id for p in search_patients(session, "SMI")] == [smith.id, smithson.id]
    assert [p.id for p in search_patients(session, "obrien")] == [obrien.id]
    assert [p.id for p in search_patients(session, "o'brien smyth")] == [obrien.id]
    assert [p.id for p in search_patients(session, "zoe")] == [obrien.id]


def test_surname_comma_given_and_given_surname(session):
    john = _patient(session, "John", "Smith")
    jane = _patient(session, "Jane", "Smith")
    _patient(session, "Smith", "Jones")  # given name Smith

    assert [p.id for p in search_patients(session, "Smith, Jo")] == [john.id]
    assert [p.id for p in search_patients(session, "smith,j")] == [jane.id, john.id]
    assert [p.id for p in search_patients(session, "John Smith")] == [john.id]
    # Surname first without the comma works too.
    assert [p.id for p in search_patients(session, "smith jane")] == [jane.id]
    results = search_patients(session, "Smith")
    assert results.kind == "name"
    assert len(results) == 3


def test_nhs_number_with_or_without_spaces(session):
    patient = _patient(session, "Nia", "Number")
    spaced = f"{patient.nhs_number[:3]} {patient.nhs_number[3:6]} {patient.nhs_number[6:]}"
    for typed in (patient.nhs_number, spaced, spaced.replace(" ", "-")):
        results = search_patients(session, typed)
        assert results.kind == "nhs_number"
        assert [p.id for p in results] == [patient.id]
        assert results.hint is None


def test_a_wrong_check_digit_is_explained_when_nothing_is_found(session):
    results = search_patients(session, "943 476 5918")
    assert list(results) == []
    assert "check digit" in results.hint
    assert search_patients(session, "9434765919").hint is None  # valid: nothing to explain


@pytest.mark.parametrize("typed", ["31/01/1970", "31/1/1970", "31-01-1970", "31.01.1970", "31 01 1970", "31011970",
                                   "31 January 1970", "31 Jan 1970", "1970-01-31", "31/01/70"])
def test_date_of_birth_in_uk_forms(session, typed):
    born = _patient(session, "Dee", "Birthday", date_of_birth=dt.date(1970, 1, 31))
    _patient(session, "Other", "Birthday", date_of_birth=dt.date(1970, 1, 30))
    results = search_patients(session, typed)
    assert results.kind == "date_of_birth"
    assert [p.id for p in results] == [born.id]


def test_name_and_date_of_birth_together(session):
    born = _patient(session, "Dee", "Birthday", date_of_birth=dt.date(1970, 1, 31))
    _patient(session, "Other", "Person", date_of_birth=dt.date(1970, 1, 31))
    results = search_patients(session, "birthday 31/01/1970")
    assert results.kind == "name_and_date_of_birth"
    assert [p.id for p in results] == [born.id]


@pytest.mark.parametrize("typed", ["07700 900123", "07700900123", "+44 7700 900123", "+447700900123",
                                   "447700900123", "(07700) 900-123"])
def test_mobile_in_any_uk_form(session, typed):
    patient = _patient(session, "Mo", "Bile", mobile="+447700900123")
    results = search_patients(session, typed)
    assert results.kind == "mobile"
    assert [p.id for p in results] == [patient.id]


@pytest.mark.parametrize(("typed", "message"), [
    ("", "Enter a name, NHS number, date of birth or mobile number"),
    ("   ", "Enter a name, NHS number, date of birth or mobile number"),
    ("s", "Enter at least 2 letters of the name"),
    ("%", "Enter at least 2 letters of the name"),
    ("%mith", None),  # the wildcard is dropped: a prefix search for "mith", never LIKE '%mith'
    ("12345", "Enter a 10-digit NHS number"),
    ("31/02/1970", "Enter a real date of birth"),
    ("01/01/2999", "Enter a date of birth in the past"),
    ("x" * 101, "Search must be 100 characters or fewer"),
    ("smith 12", "Enter a name, an NHS number"),
])
def test_bad_text_is_refused_with_a_message(session, typed, message):
    if message is None:
        assert search_patients(session, typed).kind == "name"
        return
    with pytest.raises(SearchInputError, match=re.escape(message)):
        search_patients(session, typed)


def test_more_than_the_limit_says_so(session):
    for n in range(4):
        _patient(session, f"Given{n}", "Many")
    results = search_patients(session, "many", limit=3)
    assert len(results) == 3
    assert results.more
    assert not search_patients(session, "many", limit=4).more


def test_name_keys_follow_a_changed_name(session):
    patient = _patient(session, "Ann", "Before")
    patient.family_name = "After-Wards"
    session.commit()
    assert patient.family_name_key == "afterwards"
    assert [p.id for p in search_patients(session, "afterw")] == [patient.id]
    assert list(search_patients(session, "before")) == []


# --- The page --------------------------------------------------------------------------------------------------


def test_the_page_lists_what_was_found(reception_client, session):
    patient = _patient(session, "Grace", "Hopper", date_of_birth=dt.date(1956, 12, 9), mobile="+447700900456",
                       tier=2, team="haringey")
    page = get_page(reception_client, "/staff/patients?q=hopper")
    row = page.find(id=f"patient-{patient.id}")
    assert row is not None
    words = row.get_text(" ", strip=True)
    assert "HOPPER, Grace" in words
    assert patient.nhs_number_display in words and re.search(r"\d{3} \d{3} \d{4}", words)
    assert "9 December 1956" in words
    assert "07700 900 456" in words
    assert "Tier 2" in words
    assert page.find("h2", id="results").get_text(strip=True) == "1 patient found"
    assert row.find("a")["href"] == f"/staff/patients/{patient.id}"


def test_hidden_characters_typed_or_pasted_are_not_searched_for_nor_shown_back(reception_client, session):
    # A right-to-left override shown back unclosed would reverse the rest of the line on the page.
    patient = _patient(session, "Grace", "Hopper")
    results = search_patients(session, "\u202ehop\u200bper")
    assert [p.id for p in results] == [patient.id]
    assert results.understood_as == "name “hopper”"
    page = get_page(reception_client, "/staff/patients?q=%E2%80%AEhopper")
    assert "\u202e" not in page.get_text()


def test_nothing_found_says_so(reception_client, session):
    page = get_page(reception_client, "/staff/patients?q=nobodyatall")
    assert page.find("h2", id="results").get_text(strip=True) == "No patients found"


def test_an_invalid_nhs_number_is_explained_on_the_page(reception_client, session):
    page = get_page(reception_client, "/staff/patients?q=943+476+5918")
    assert "check digit" in page.get_text()


@pytest.mark.parametrize(("typed", "message"), [
    ("", "Enter a name, NHS number, date of birth or mobile number"),
    ("a", "Enter at least 2 letters of the name"),
    ("31/13/1970", "Enter a real date of birth, like 31/01/1970"),
])
def test_empty_or_short_text_gets_a_message_next_to_the_box(reception_client, typed, message):
    response = reception_client.get("/staff/patients", query_string={"q": typed})
    assert response.status_code == 400
    page = parse(response)
    group = page.find(id="q").find_parent(class_="nhsuk-form-group")
    assert message in group.find(class_="nhsuk-error-message").get_text()
    assert page.title.string.startswith("Error:")
    assert page.select_one(".nhsuk-error-summary a[href='#q']")


def test_more_than_fifty_matches_are_cut_with_a_warning(reception_client, session):
    session.execute(insert(Patient), [_row(n, family="Crowd") for n in range(51)])
    session.commit()
    page = get_page(reception_client, "/staff/patients?q=crowd")
    assert len(page.select("tbody tr")) == 50
    assert "More than 50 patients match" in page.get_text()


def test_a_search_is_audited_without_the_text(reception_client, session, db):
    patient = _patient(session, "Audit", "Trail")
    get_page(reception_client, f"/staff/patients?q={patient.nhs_number}")
    with db.transaction() as s:
        events = s.query(AuditEvent).filter(AuditEvent.action == "patient_search").all()
        assert [e.detail for e in events] == ["nhs_number: 1 found"]
        assert patient.nhs_number not in events[0].detail


def test_patients_may_not_search(patient_client):
    assert patient_client.get("/staff/patients?q=smith").status_code == 403


# --- Query plans -----------------------------------------------------------------------------------------------

PLAN_PATIENTS = 3000
GIVEN = ["John", "Jane", "Mohammed", "Aisha", "Olu", "Zoë", "Siobhán", "Tomasz", "Priya", "Grace"]
FAMILY = ["Smith", "Jones", "O'Brien", "Khan", "Nowak", "Adeyemi", "Patel", "Murphy", "Walsh", "Hopper", "Ng",
          "Van der Berg", "Okafor", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Hughes"]


def _row(n: int, *, family: str | None = None) -> dict:
    # Surnames without digits, as real ones are: Smith-aa, Smith-ab ...
    k = n // len(FAMILY)
    given = GIVEN[n % len(GIVEN)]
    family = family or f"{FAMILY[n % len(FAMILY)]}-{chr(97 + k // 26 % 26)}{chr(97 + k % 26)}"
    return {
        "nhs_number": next(_numbers), "given_name": given, "family_name": family,
        "given_name_key": name_key(given), "family_name_key": name_key(family),
        "date_of_birth": dt.date(1940, 1, 1) + dt.timedelta(days=(n * 7) % 25_000),
        "mobile": f"+4477009{n:05d}", "postcode": "N8 8JD", "tier": 1, "sms_consent": True,
        "created_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    }


SEARCHES = [
    pytest.param("nhs_number", id="nhs-number"),
    pytest.param("9434765919", id="nhs-number-not-found"),
    pytest.param("mobile", id="mobile"),
    pytest.param("date_of_birth", id="date-of-birth"),
    pytest.param("smith", id="one-name"),
    pytest.param("Smith-ab, Jo", id="surname-comma-given"),
    pytest.param("John Smith-ab", id="given-surname"),
    pytest.param("van der berg", id="surname-of-several-words"),
    pytest.param("zo", id="given-name-prefix"),
    pytest.param("name_and_date_of_birth", id="name-and-date-of-birth"),
]


def _plan(session, statement: str, parameters) -> str:
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        return "\n".join(row[0] for row in rows)
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
    return "\n".join(row[-1] for row in rows)


@pytest.fixture(scope="module")
def _plan_rows():
    return [_row(n) for n in range(PLAN_PATIENTS)]


@pytest.fixture
def _statistics(db):
    """The test gathers the planner's statistics; on SQLite they stay in the database file, and in the memory of
    every open connection, where they would steer the query plans of every later test (a reminder-planning test
    then saw its join scan the emptied patient table). They are dropped, and the pooled connections closed."""
    yield
    if db.is_sqlite:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat1")
            connection.exec_driver_sql("DROP TABLE IF EXISTS sqlite_stat4")
        db.engine.dispose()


@pytest.mark.parametrize("typed", SEARCHES)
def test_every_kind_of_search_uses_an_index(session, _plan_rows, _statistics, typed):
    session.execute(insert(Patient), _plan_rows)
    session.commit()
    sample = _plan_rows[PLAN_PATIENTS // 2]
    born = f"{sample['date_of_birth']:%d/%m/%Y}"
    typed = {"nhs_number": sample["nhs_number"], "mobile": "0" + sample["mobile"][3:], "date_of_birth": born,
             "name_and_date_of_birth": f"{sample['family_name']} {born}"}.get(typed, typed)
    dialect = session.get_bind().dialect.name
    session.execute(text("ANALYZE patient" if dialect == "postgresql" else "ANALYZE"))
    session.commit()

    captured = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        if "FROM patient" in statement:
            captured.append((statement, parameters))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        results = search_patients(session, typed)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert len(captured) == 1
    plan = _plan(session, *captured[0])
    print(f"{dialect} {typed!r}: {len(results)} found\n{plan}")
    if dialect == "postgresql":
        assert "Seq Scan" not in plan, plan
        assert re.search(r"Index (Only )?Scan|Bitmap Index Scan", plan), plan
    else:
        assert not re.search(r"SCAN patient(?! USING)", plan), plan
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan or "USING INTEGER PRIMARY KEY" in plan, plan
    if typed not in ("9434765919",):
        assert len(results) >= 1, f"{typed!r} found nobody: the plan test would prove nothing"
