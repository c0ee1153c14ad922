from tests.pages import get_page


def test_health_check_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_sign_in_page_renders_with_the_nhs_layout(client):
    page = get_page(client, "/sign-in")
    assert page.h1.get_text(strip=True) == "Sign in"
    assert page.select_one("header.nhsuk-header")
    assert page.select_one("footer a[href='/accessibility']")


def test_patient_home_shows_greeting(patient_client):
    page = get_page(patient_client, "/")
    assert page.h1.get_text(strip=True) == f"Hello {patient_client.user.patient.given_name}"
