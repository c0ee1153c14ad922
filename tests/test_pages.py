"""Every page: styled errors, access by role, and no 500s for odd input."""

import pytest

from portal.auth.models import Role
from tests import factories
from tests.conftest import sign_in
from tests.pages import get_page

PATIENT_PAGES = ["/", "/services", "/services/t1-group", "/bookings", "/self-care", "/appointments", "/questionnaires",
                 "/calendar"]
STAFF_PAGES = ["/staff", "/staff/patients", "/staff/patients/new"]
PUBLIC_PAGES = ["/sign-in", "/accessibility", "/privacy", "/contact"]


@pytest.mark.parametrize("url", PUBLIC_PAGES)
def test_public_pages_render(client, url):
    get_page(client, url)


@pytest.mark.parametrize("url", PATIENT_PAGES[1:] + STAFF_PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in")


@pytest.mark.parametrize("url", STAFF_PAGES)
def test_patients_get_403_on_staff_pages(patient_client, url):
    page = get_page(patient_client, url, status=403)
    assert page.h1.get_text(strip=True) == "You cannot see this page"


@pytest.mark.parametrize("url", PATIENT_PAGES)
def test_patients_can_open_their_pages(patient_client, url):
    get_page(patient_client, url)


@pytest.mark.parametrize("role", [Role.RECEPTION, Role.FACILITATOR, Role.ADMIN])
def test_staff_roles_can_open_the_staff_home(app, session, role):
    user = factories.create_staff(session, role=role)
    client = app.test_client()
    sign_in(client, user.email)
    get_page(client, "/staff")
    get_page(client, "/staff/patients")
    assert client.get("/services").status_code == 403


def _current_menu_items(page) -> list[tuple[str, str]]:
    return [(link.get_text(strip=True), link["aria-current"])
            for link in page.select("nav.nhsuk-header__navigation a[aria-current]")]


@pytest.mark.parametrize(("url", "current"), [
    ("/", [("Home", "page")]),
    ("/bookings", [("My bookings", "page")]),
    ("/services/t1-group", [("Book", "true")]),
    ("/diary/trends", [("Diary and goals", "true")]),
    ("/goals/new", [("Diary and goals", "true")]),
    ("/account", []),
])
def test_the_menu_tells_a_patient_which_page_or_section_they_are_in(patient_client, url, current):
    # A screen reader says "current page" on the item; the item's text is bold for those who override colours.
    page = get_page(patient_client, url)
    assert _current_menu_items(page) == current
    assert len(page.select(".nhsuk-header__navigation-item--current strong")) == len(current)


def test_the_menu_tells_staff_which_page_or_section_they_are_in(reception_client, session):
    patient = factories.create_patient(session)
    assert _current_menu_items(get_page(reception_client, "/staff")) == [("Staff home", "page")]
    assert _current_menu_items(get_page(reception_client, f"/staff/patients/{patient.id}")) == [("Patients", "true")]
    # Registering is its own item, though its address is under the patients': only it is marked.
    assert _current_menu_items(get_page(reception_client, "/staff/patients/new")) == [("Register a patient", "page")]
    # Staff home is not the section of every /staff page.
    assert _current_menu_items(get_page(reception_client, "/staff/waiting-lists")) == []


def test_staff_see_patient_records_patients_do_not(app, session, patient_client):
    other = factories.create_patient(session)
    assert patient_client.get(f"/staff/patients/{other.id}").status_code == 403
    user = factories.create_staff(session, role=Role.FACILITATOR)
    client = app.test_client()
    sign_in(client, user.email)
    get_page(client, f"/staff/patients/{other.id}")
    get_page(client, "/staff/patients/999999", status=404)


def test_not_found_page_is_styled(client):
    page = get_page(client, "/no-such-page", status=404)
    assert page.h1.get_text(strip=True) == "Page not found"


def test_method_not_allowed_is_styled(client):
    response = client.delete("/sign-in")
    assert response.status_code == 405
    assert "Page not found" in response.get_data(as_text=True)


def test_a_forms_address_opened_as_a_page_shows_the_page_the_form_is_on(patient_client, session):
    cohort = factories.create_cohort(session)
    response = patient_client.get(f"/cohorts/{cohort.id}/waiting-list")
    assert (response.status_code, response.headers["Location"]) == (303, f"/cohorts/{cohort.id}")
    # Further up when the address just above is no page either; other methods are not redirected.
    response = patient_client.get("/waiting-list/1/leave")
    assert (response.status_code, response.headers["Location"]) == (303, "/")
    assert patient_client.delete(f"/cohorts/{cohort.id}").status_code == 405


def test_an_unexpected_error_shows_the_styled_500_without_a_trace(app, monkeypatch):
    import portal.site

    def broken():
        raise RuntimeError("secret internals")

    monkeypatch.setitem(app.view_functions, "site.privacy", broken)
    response = app.test_client().get("/privacy")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Sorry, there is a problem with the service" in body
    assert "secret internals" not in body and "Traceback" not in body
    assert portal.site  # the module whose view was replaced


def test_dev_inbox_exists_only_outside_production(client, app):
    assert client.get("/dev/texts").status_code == 200
    app.config["PRODUCTION"] = True
    try:
        assert client.get("/dev/texts").status_code == 404
    finally:
        app.config["PRODUCTION"] = False


def test_static_assets_are_fingerprinted_compressed_and_cached(client):
    page = get_page(client, "/sign-in")
    href = page.find("link", rel="stylesheet")["href"]
    assert href.startswith("/static/dist/portal.") and href.endswith(".css") and len(href.split(".")) == 3
    response = client.get(href, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    assert "max-age=315360000" in response.headers["Cache-Control"]
    response.close()


@pytest.mark.parametrize(
    "url",
    ["/cohorts/%00", "/services/%27%22%3E%3Cscript%3E", "/activate/" + "x" * 5000, "/reading/..%2F..%2Fetc",
     "/staff/patients/99999999999999999999", "/sign-in?next=%0d%0aSet-Cookie:x=1"],
)
def test_odd_urls_never_answer_500(patient_client, url):
    assert patient_client.get(url).status_code < 500
