"""Jinja set-up: NHS.UK frontend macros, fingerprinted asset URLs, and the cached layout.

Rendering the NHS.UK header and footer macros costs more than the rest of a typical page. They only
change with the signed-in role and, for the header, with which menu item is current, so each variant is
rendered once per process and reused; the one per-request value inside them (the CSRF token of the
sign-out button) is filled in afterwards.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Hashable
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, PackageLoader
from markupsafe import Markup, escape

from portal.assets import load_manifest
from portal.booking.holidays import england_bank_holiday
from portal.dates import WEEKDAYS, short_day, weekday_and_date, written_date

CSRF_PLACEHOLDER = "__PORTAL_CSRF_TOKEN__"
LONDON = ZoneInfo("Europe/London")
# Rendered fragments kept per process (see ``fragment``): a few kilobytes each.
FRAGMENTS_KEPT = 512
NAV_HREF = re.compile(r'class="nhsuk-header__navigation-link" href="([^"]+)"')
# Pages under no menu item's address that belong to one: goals and the flare-up plan are in "Diary and goals".
NAV_SECTIONS = {"/goals": "/diary", "/flare-up-plan": "/diary"}
# Menu items whose addresses every page starts with: they are current on their own page only.
NAV_HOMES = {"/", "/staff"}


def current_menu_item(hrefs: list[str], path: str) -> tuple[str, str]:
    """The header menu's item for the page at ``path`` (its href, or ""), and else the item of the section
    the page is in: the longest href the path goes on from, as /staff/patients for /staff/patients/12."""
    if path in hrefs:
        return path, ""
    for prefix, href in NAV_SECTIONS.items():
        if (path == prefix or path.startswith(prefix + "/")) and href in hrefs:
            return "", href
    under = [href for href in hrefs if href not in NAV_HOMES and path.startswith(href.rstrip("/") + "/")]
    return "", max(under, key=len, default="")


def init_templating(app: Flask) -> None:
    app.jinja_options = {
        "undefined": ChainableUndefined,
        "loader": ChoiceLoader(
            [FileSystemLoader(app.root_path + "/templates"), PackageLoader("nhsuk_frontend_jinja")]
        ),
        "autoescape": True,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "extensions": ["jinja2.ext.do"],
    }
    manifest = load_manifest()
    fragments: dict[tuple[str, str, str, str], Markup] = {}

    def static_url(name: str) -> str:
        return "/static/dist/" + manifest.get(name, name)

    def _render_layout(name: str, role: str, page: str = "", section: str = "") -> Markup:
        key = (name, role, page, section)
        if key not in fragments:
            template = current_app.jinja_env.get_template(f"layout/{name}.html")
            # Our own template, autoescaped by Jinja: already safe HTML.
            fragments[key] = Markup(template.render(  # noqa: S704
                role=role, csrf_placeholder=CSRF_PLACEHOLDER, current_page=page, current_section=section))
        return fragments[key]

    def layout_fragment(name: str) -> Markup:
        role = current_user.role if current_user.is_authenticated else "anonymous"
        html = _render_layout(name, role)
        if name == "header":
            # One variant per menu item marked as current: a handful per role, each rendered once.
            page, section = current_menu_item(NAV_HREF.findall(html), request.path)
            if page or section:
                html = _render_layout(name, role, page, section)
        if CSRF_PLACEHOLDER in html:
            return Markup(html.replace(CSRF_PLACEHOLDER, generate_csrf()))  # noqa: S704 - token is URL-safe
        return html

    @functools.lru_cache(maxsize=FRAGMENTS_KEPT)
    def _render_fragment(name: str, values: tuple[tuple[str, Hashable], ...]) -> Markup:
        # Our own template, autoescaped by Jinja: already safe HTML.
        return Markup(app.jinja_env.get_template(name).render(dict(values)))  # noqa: S704

    def fragment(name: str, **values: Hashable) -> Markup:
        """A template that depends only on ``values`` (no request, no signed-in user), rendered once for each
        distinct set of values and then reused. The values are the cache's key, so a changed value renders
        afresh and nothing can be stale: they must be hashable (frozen rows, strings, numbers). Used where the
        rendering costs more than the rest of a page: the urgent-help card (NHS.UK macros), and each cohort
        on the course page (every session's date)."""
        return _render_fragment(name, tuple(sorted(values.items())))

    def csrf_field() -> Markup:
        """The hidden CSRF field of every POST form: the request's token (Flask-WTF makes it once per request,
        and every FlaskForm checks it under this name). Written without an id, so a page with several forms
        has no duplicate ids; and it costs no form object where a form has nothing else to show."""
        return Markup(f'<input type="hidden" name="csrf_token" value="{escape(generate_csrf())}">')  # noqa: S704

    app.jinja_env.globals.update(
        csrf_field=csrf_field,
        static_url=static_url,
        layout_fragment=layout_fragment,
        fragment=fragment,
        domain=app.extensions["domain"],
    )
    app.jinja_env.filters.update(
        local_date=local_date,
        local_time=local_time,
        local_datetime=local_datetime,
        local_weekday=local_weekday,
        written_date=written_date,
        short_day=short_day,
        bank_holiday=bank_holiday,
    )


def _local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(LONDON)


def local_date(value: dt.datetime | dt.date) -> str:
    """'Tuesday 6 January 2026', in London time."""
    if isinstance(value, dt.datetime):
        value = _local(value).date()
    return weekday_and_date(value)


def local_time(value: dt.datetime) -> str:
    """'6pm' or '6:30pm', in London time, as NHS.UK style writes times."""
    local = _local(value)
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    if local.hour == 12 and local.minute == 0:
        return "midday"
    return f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"


def bank_holiday(value: dt.datetime) -> str | None:
    """The England bank holiday a moment falls on, in London, or None."""
    return england_bank_holiday(_local(value).date())


def local_weekday(value: dt.datetime) -> str:
    return WEEKDAYS[_local(value).weekday()]


def local_datetime(value: dt.datetime) -> str:
    return f"{local_date(value)} at {local_time(value)}"
