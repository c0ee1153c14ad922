"""What scanners and odd clients send: file parts and JSON in place of form fields, bodies too large to read,
methods an address does not take, and the files every site is asked for. Each once answered 500 or less than
HTTP asks."""

from __future__ import annotations

import io

import pytest

from tests import factories
from tests.pages import csrf_token, get_page, parse


def _errors(response) -> list[str]:
    return [e.get_text(" ", strip=True) for e in parse(response).select(".nhsuk-error-message")]


def test_a_file_in_place_of_a_field_is_a_missing_answer_not_a_500(client):
    token = csrf_token(get_page(client, "/sign-in"))
    response = client.post("/sign-in", content_type="multipart/form-data", data={
        "csrf_token": token, "identifier": (io.BytesIO(b"07700 900001"), "a.txt"), "password": "x"})
    assert response.status_code in (200, 400)
    assert _errors(response)


def test_a_file_in_a_signed_in_form_is_refused_next_to_the_field_and_saves_nothing(patient_client, session):
    from sqlalchemy import func, select

    from portal.diary.models import Goal

    token = csrf_token(get_page(patient_client, "/goals/new"))
    response = patient_client.post("/goals/new", content_type="multipart/form-data", data={
        "csrf_token": token, "what": (io.BytesIO(b"Walk"), "goal.txt"), "how_much": "Daily", "why": "To walk",
        "confidence": "7"})
    assert response.status_code == 400
    assert "Enter what you want to do" in " ".join(_errors(response))
    assert session.scalar(select(func.count()).select_from(Goal)) == 0


def test_a_json_body_is_not_read_as_the_form(patient_client):
    page = get_page(patient_client, "/diary")
    response = patient_client.post("/diary", json={"note": {"nested": 1}, "pain": [1, 2]},
                                   headers={"X-CSRFToken": csrf_token(page)})
    assert response.status_code == 400


def test_a_body_too_large_is_refused_before_it_is_read(client):
    token = csrf_token(get_page(client, "/sign-in"))
    response = client.post("/sign-in", data={"csrf_token": token, "identifier": "07700 900001",
                                             "password": "x" * (1100 * 1024)})
    assert response.status_code == 413
    assert "Something went wrong with that request" in response.get_data(as_text=True)


def test_a_method_not_allowed_names_the_ones_that_are(client):
    response = client.put("/sign-in")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_head_of_a_forms_address_answers_as_get_does(patient_client, session):
    cohort = factories.create_cohort(session)
    url = f"/cohorts/{cohort.id}/waiting-list"
    got, head = patient_client.get(url), patient_client.head(url)
    assert (head.status_code, head.headers["Location"]) == (got.status_code, got.headers["Location"]) == (
        303, f"/cohorts/{cohort.id}")


@pytest.mark.parametrize(("url", "status", "expected"), [
    ("/robots.txt", 200, "Disallow: /"),
    ("/favicon.ico", 301, None),
])
def test_the_files_every_site_is_asked_for(client, url, status, expected):
    response = client.get(url)
    assert response.status_code == status
    if expected:
        assert expected in response.get_data(as_text=True)
    else:
        icon = client.get(response.headers["Location"])
        icon.close()
        assert icon.status_code == 200


@pytest.mark.parametrize("path", ["//staff//patients", "/staff//patients", "/sign-in//", "//"])
def test_doubled_slashes_never_redirect_to_the_host_a_request_names(client, path):
    # The path as a server hands it over (the test client would read "//staff" as a host).
    response = client.get("/", environ_overrides={"PATH_INFO": path, "HTTP_HOST": "evil.example"})
    assert "evil.example" not in response.headers.get("Location", "")
    assert response.status_code != 500
