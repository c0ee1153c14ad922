"""The page showing a new set-up link answers a POST: refreshing it, or Back then Forward, sends that POST again.
It once made another link each time, silently, so the link just shown stopped working. Now the buttons carry the
account's newest link as the page knew it, and the same form sent again makes nothing and says so."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth import staff_accounts
from portal.auth.models import Role, StaffSetUpLink, User
from portal.db import utcnow
from tests import factories
from tests.conftest import sign_in
from tests.pages import check_page, get_page, parse
from tests.races import count_together

ACCOUNTS = "/staff/admin/staff-accounts"
LINK = re.compile(r"https://portal\.test(/activate/staff/[A-Za-z0-9_-]{20,})")


@pytest.fixture
def admin(session):
    return factories.create_staff(session, role=Role.ADMIN, display_name="Ada Admin")


@pytest.fixture
def admin_client(app, admin):
    client = app.test_client()
    assert sign_in(client, admin.email).status_code == 302
    return client


def _form(page, action: str) -> dict[str, str]:
    """The fields a browser would send for the form posting to ``action``."""
    form = page.find("form", action=action)
    assert form is not None, f"no form for {action}"
    return {field["name"]: field.get("value", "") for field in form.find_all("input")}


def _link(response) -> str | None:
    shown = parse(response).select_one("#set-up-link")
    return LINK.search(shown.get_text()).group(1) if shown else None


def _count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def _events(session, action: str) -> int:
    return _count(session, AuditEvent, AuditEvent.action == action)


def _works(app, path: str) -> bool:
    return app.test_client().get(path).status_code == 200


def test_sending_the_new_link_form_again_makes_no_link_and_says_when_the_last_was_made(app, admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    target.password_hash = staff_accounts.NO_PASSWORD
    session.commit()
    url = f"{ACCOUNTS}/{target.id}/set-up-link"
    sent = _form(get_page(admin_client, f"{ACCOUNTS}/{target.id}"), url)
    assert sent["newest_link"] == "0"
    first = admin_client.post(url, data=sent)
    assert first.status_code == 200
    shown = _link(first)

    again = admin_client.post(url, data=sent)  # the page refreshed
    assert again.status_code == 409
    page = parse(again)
    check_page(page)
    assert _link(again) is None
    assert page.h1.get_text(strip=True) == "A set-up link for Rita Reception was made already"
    [link] = session.scalars(select(StaffSetUpLink).where(StaffSetUpLink.user_id == target.id)).all()
    text = page.get_text(" ", strip=True)
    assert "made by you on" in text and "no new link was made" in text
    assert "or this account open in another tab" in text
    assert "That link works until" in text
    assert _works(app, shown)
    assert _events(session, "staff_set_up_link_issued") == 1

    # Making another is a new, clear choice: the form on that page carries the newest link.
    another = _form(page, url)
    assert another["newest_link"] == str(link.id)
    response = admin_client.post(url, data=another)
    assert response.status_code == 200
    assert not _works(app, shown) and _works(app, _link(response))
    assert _events(session, "staff_set_up_link_issued") == 2
    # And that page, sent again, is refused in turn.
    assert admin_client.post(url, data=another).status_code == 409
    assert _count(session, StaffSetUpLink, StaffSetUpLink.user_id == target.id) == 2


def test_sending_the_reset_form_again_resets_nothing_more(app, admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    url = f"{ACCOUNTS}/{target.id}/reset-second-factor"
    sent = _form(get_page(admin_client, f"{ACCOUNTS}/{target.id}"), url)
    first = admin_client.post(url, data=sent)
    assert first.status_code == 200
    shown = _link(first)
    again = admin_client.post(url, data=sent)
    assert again.status_code == 409
    page = parse(again)
    assert page.h1.get_text(strip=True) == "A set-up link for Rita Reception was made already"
    assert page.find("form", action=f"{ACCOUNTS}/{target.id}/set-up-link")
    assert _works(app, shown)
    assert (_events(session, "mfa_reset"), _events(session, "staff_set_up_link_issued")) == (1, 1)


def test_a_link_made_by_another_admin_meanwhile_is_not_replaced_unasked(app, admin_client, session):
    """Two admins on one account's page: the second press is told of the first admin's link, not handed a new one
    that silently stops the first."""
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    target.password_hash = staff_accounts.NO_PASSWORD
    session.commit()
    url = f"{ACCOUNTS}/{target.id}/set-up-link"
    sent = _form(get_page(admin_client, f"{ACCOUNTS}/{target.id}"), url)
    other = factories.create_staff(session, role=Role.ADMIN, display_name="Omar Other")
    other_client = app.test_client()
    assert sign_in(other_client, other.email).status_code == 302
    theirs = _link(other_client.post(url, data=_form(get_page(other_client, f"{ACCOUNTS}/{target.id}"), url)))
    response = admin_client.post(url, data=sent)
    assert response.status_code == 409
    text = parse(response).get_text(" ", strip=True)
    assert "made by Omar Other on" in text
    # Not "you refreshed the page": Omar made the link after this admin opened the page.
    assert "That was after you opened the page with the button you pressed. So nothing was changed" in text
    assert "refreshed" not in text
    assert _works(app, theirs)


def test_once_the_link_is_used_the_page_says_so_and_offers_no_new_one(app, admin_client, session):
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    url = f"{ACCOUNTS}/{target.id}/reset-second-factor"
    sent = _form(get_page(admin_client, f"{ACCOUNTS}/{target.id}"), url)
    assert admin_client.post(url, data=sent).status_code == 200
    link = session.scalars(select(StaffSetUpLink).where(StaffSetUpLink.user_id == target.id)).one()
    link.used_at = utcnow()
    session.get(User, target.id).password_hash = "$argon2id$set-up-since"
    session.commit()
    response = admin_client.post(url, data=sent)
    assert response.status_code == 409
    page = parse(response)
    assert "Rita Reception used that link on" in page.get_text(" ", strip=True)
    assert not page.find("form", action=f"{ACCOUNTS}/{target.id}/set-up-link")


def test_a_form_without_the_field_works_as_before(admin_client, session):
    """A page made before the buttons carried the newest link: the press is taken as a new one."""
    target = factories.create_staff(session, role=Role.RECEPTION, display_name="Rita Reception")
    target.password_hash = staff_accounts.NO_PASSWORD
    session.commit()
    url = f"{ACCOUNTS}/{target.id}/set-up-link"
    sent = {k: v for k, v in _form(get_page(admin_client, f"{ACCOUNTS}/{target.id}"), url).items()
            if k != "newest_link"}
    assert admin_client.post(url, data=sent).status_code == 200
    assert admin_client.post(url, data=sent).status_code == 200
    assert _count(session, StaffSetUpLink, StaffSetUpLink.user_id == target.id) == 2


def test_two_presses_at_once_make_one_link(race_db, session):
    admin = factories.create_staff(session, role=Role.ADMIN)
    target = factories.create_staff(session, role=Role.RECEPTION)
    target.password_hash = staff_accounts.NO_PASSWORD
    session.commit()
    admin_id, target_id = admin.id, target.id  # read here: the test's session is not for the racing threads

    def press():
        with race_db.transaction() as s:
            try:
                staff_accounts.new_set_up_link(s, s.get(User, target_id), issued_by=s.get(User, admin_id),
                                               valid_days=7, now=utcnow(), newest_seen=0)
            except staff_accounts.LinkAlreadyMade:
                return "already made"
        return "made"

    assert count_together([press] * 6) == {"made": 1, "already made": 5}
    assert _count(session, StaffSetUpLink, StaffSetUpLink.user_id == target_id) == 1
