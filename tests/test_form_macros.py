"""The form macros write NHS.UK markup out by hand (the NHS.UK frontend macros cost a millisecond or more per
field). Each must give exactly the markup of the NHS.UK macro it stands for, called as the portal used to."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, Form, PasswordField, RadioField, SelectChoice, SelectField, StringField, TextAreaField

from portal.forms import DateParts


class _Tokens(HTMLParser):
    """An element-and-text outline of a fragment, blind to whitespace between and around things."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[tuple] = []

    def handle_starttag(self, tag, attrs):
        self.tokens.append(("start", tag, tuple(sorted((name, value or "") for name, value in attrs))))

    def handle_endtag(self, tag):
        self.tokens.append(("end", tag))

    def handle_data(self, data):
        if data.strip():
            self.tokens.append(("text", " ".join(data.split())))


def outline(html: str) -> list[tuple]:
    parser = _Tokens()
    parser.feed(html)
    return parser.tokens


class ExampleForm(Form):
    name = StringField()
    secret = PasswordField()
    note = TextAreaField()
    pain = RadioField(choices=[SelectChoice("0", "0 – no pain"), SelectChoice("1", "1 <& co>"), SelectChoice("2", "2")])
    pick = SelectField(choices=[SelectChoice("", "Choose"), SelectChoice("x", "X <one>"), SelectChoice("y", "Y")])
    print_ = BooleanField("Large print")
    easy = BooleanField("Easy read <&>")



# The NHS.UK frontend macros, called as the portal's form macros called them before they were written out.
REFERENCES = {
    "text_field": """{% from "nhsuk/components/input/macro.jinja" import input %}
{% from "macros/forms.html" import warning_hint %}
{{ input({
  "label": {"text": label},
  "hint": {"html": warning_hint(hint, warning, field.id)} if warning else ({"text": hint} if hint else undefined),
  "id": field.id, "name": field.name,
  "value": field._value() if field.type != "PasswordField" else "",
  "type": type, "autocomplete": autocomplete, "inputmode": inputmode, "spellcheck": spellcheck,
  "autocapitalize": autocapitalize,
  "classes": ("nhsuk-input--width-" ~ width) if width else undefined,
  "errorMessage": {"text": field.errors[0]} if field.errors else undefined
}) }}""",
    "radio_field": """{% from "nhsuk/components/radios/macro.jinja" import radios %}
{% from "macros/forms.html" import warning_hint %}
{% set items = [] %}
{% for choice in field.iter_choices() %}
  {% do items.append({"value": choice.value, "text": choice.label, "checked": choice.selected}) %}
{% endfor %}
{{ radios({
  "idPrefix": field.id, "name": field.name, "inline": inline,
  "fieldset": {"legend": {"text": label, "size": size}},
  "hint": {"html": warning_hint(hint, warning, field.id)} if warning else ({"text": hint} if hint else undefined),
  "errorMessage": {"text": field.errors[0]} if field.errors else undefined,
  "items": items
}) }}""",
    "select_field": """{% from "nhsuk/components/select/macro.jinja" import select %}
{% set items = [] %}
{% for choice in field.iter_choices() %}
  {% do items.append({"value": choice.value, "text": choice.label, "selected": choice.selected}) %}
{% endfor %}
{{ select({
  "id": field.id, "name": field.name, "label": {"text": label},
  "hint": {"text": hint} if hint else undefined,
  "errorMessage": {"text": field.errors[0]} if field.errors else undefined,
  "items": items
}) }}""",
    "textarea_field": """{% from "nhsuk/components/textarea/macro.jinja" import textarea %}
{{ textarea({
  "id": field.id, "name": field.name, "label": {"text": label, "size": "s"},
  "hint": {"text": hint} if hint else undefined, "rows": rows, "value": field.data or "",
  "errorMessage": {"text": field.errors[0]} if field.errors else undefined
}) }}""",
    "checkbox_fields": """{% from "nhsuk/components/checkboxes/macro.jinja" import checkboxes %}
{% set items = [] %}
{% for field in fields %}
  {% do items.append({"value": "y", "text": field.label.text, "name": field.name, "id": field.id,
                      "checked": field.data}) %}
{% endfor %}
{% set errors = fields | selectattr("errors") | list %}
{{ checkboxes({
  "idPrefix": fields[0].id, "name": fields[0].name,
  "fieldset": {"legend": {"text": label, "size": "s"}},
  "hint": {"text": hint} if hint else undefined,
  "errorMessage": {"text": errors[0].errors[0]} if errors else undefined,
  "items": items
}) }}""",
    "error_summary": """{% from "nhsuk/components/error-summary/macro.jinja" import errorSummary %}
{% if form.errors %}
{% set items = [] %}
{% for field in form if field.errors and field.type != "CSRFTokenField" %}
  {% do items.append({"text": field.errors[0], "href": "#" ~ field.id}) %}
{% endfor %}
{{ errorSummary({"titleText": "There is a problem", "errorList": items,
                  "attributes": {"tabindex": "-1", "autofocus": {"value": true, "optional": true}}}) }}
{% endif %}""",
}

OURS = {
    "text_field": """{% from "macros/forms.html" import text_field %}{{ text_field(field, label, hint=hint,
        autocomplete=autocomplete, type=type, inputmode=inputmode, width=width, spellcheck=spellcheck,
        autocapitalize=autocapitalize, warning=warning) }}""",
    "radio_field": """{% from "macros/forms.html" import radio_field %}{{ radio_field(field, label, hint=hint,
        inline=inline, size=size, warning=warning) }}""",
    "select_field": '{% from "macros/forms.html" import select_field %}{{ select_field(field, label, hint=hint) }}',
    "textarea_field": """{% from "macros/forms.html" import textarea_field %}{{ textarea_field(field, label,
        hint=hint, rows=rows) }}""",
    "checkbox_fields": """{% from "macros/forms.html" import checkbox_fields %}{{ checkbox_fields(fields, label,
        hint=hint) }}""",
    "error_summary": '{% from "macros/forms.html" import error_summary %}{{ error_summary(form) }}',
}

DEFAULTS = {"label": "Label <b>", "hint": None, "warning": None, "autocomplete": None, "type": "text",
            "inputmode": None, "width": None, "spellcheck": None, "autocapitalize": None, "inline": False,
            "size": "s", "rows": 4}

CASES = [
    ("text_field", "name", {}, {}),
    ("text_field", "name", {"name": "Al <b> & co"}, {"hint": "Your full name", "autocomplete": "name",
                                                    "width": 10, "spellcheck": False, "autocapitalize": "none",
                                                    "inputmode": "numeric"}),
    ("text_field", "name", {"name": "x"}, {"error": "Enter a name", "hint": "A hint", "spellcheck": True}),
    ("text_field", "name", {}, {"error": "Enter a name", "warning": "Outside the catchment"}),
    ("text_field", "secret", {"secret": "hunter2"}, {"type": "password", "autocomplete": "current-password"}),
    ("text_field", "name", {}, {"type": "tel", "hint": "A hint", "warning": "Looks like a landline"}),
    ("radio_field", "pain", {}, {}),
    ("radio_field", "pain", {"pain": "1"}, {"hint": "0 is no pain", "inline": True, "size": "m"}),
    ("radio_field", "pain", {"pain": "2"}, {"error": "Choose one", "hint": "A hint", "size": "l"}),
    ("radio_field", "pain", {}, {"error": "Choose one", "inline": True}),
    ("radio_field", "pain", {"pain": "0"}, {"hint": "A hint", "warning": "Outside the catchment"}),
    ("select_field", "pick", {}, {}),
    ("select_field", "pick", {"pick": "x"}, {"hint": "Pick one"}),
    ("select_field", "pick", {"pick": "y"}, {"error": "Choose one", "hint": "Pick one"}),
    ("textarea_field", "note", {}, {}),
    ("textarea_field", "note", {"note": "A <note> & more"}, {"hint": "Optional", "rows": 6}),
    ("textarea_field", "note", {"note": "x"}, {"error": "Too long"}),
]


def _render(app, source: str, values: dict) -> str:
    with app.test_request_context("/"):
        return app.jinja_env.from_string(source).render(**values)


@pytest.mark.parametrize(("macro", "name", "data", "options"), CASES)
def test_each_field_macro_writes_the_markup_of_its_nhsuk_macro(app, macro, name, data, options):
    form = ExampleForm(MultiDict(data))
    field = form[name]
    options = dict(options)
    if error := options.pop("error", None):
        field.errors = [error]
    values = {**DEFAULTS, **options, "field": field}
    ours = _render(app, OURS[macro], values)
    assert f'id="{field.id}"' in ours
    assert outline(ours) == outline(_render(app, REFERENCES[macro], values))


@pytest.mark.parametrize(("data", "errors", "hint"), [
    ({}, {}, None),
    ({"print_": "y"}, {}, "Tick all that apply"),
    ({"easy": "y"}, {"easy": "Tell us which"}, "A hint"),
    ({}, {"print_": "Tick one"}, None),
])
def test_checkboxes_write_the_markup_of_the_nhsuk_macro(app, data, errors, hint):
    form = ExampleForm(MultiDict(data))
    for name, error in errors.items():
        form[name].errors = [error]
    values = {**DEFAULTS, "hint": hint, "fields": [form.print_, form.easy]}
    ours = _render(app, OURS["checkbox_fields"], values)
    assert "nhsuk-checkboxes__input" in ours
    assert outline(ours) == outline(_render(app, REFERENCES["checkbox_fields"], values))


def test_the_error_summary_links_each_error_to_its_field(app):
    form = ExampleForm(MultiDict({}))
    form.name.errors = ["Enter a name"]
    form.pain.errors = ["Choose how bad <it> was"]
    ours = _render(app, OURS["error_summary"], {"form": form})
    assert [t for t in outline(ours) if t[0] == "start" and t[1] == "a"] == [
        ("start", "a", (("href", "#name"),)), ("start", "a", (("href", "#pain"),))]
    assert outline(ours) == outline(_render(app, REFERENCES["error_summary"], {"form": form}))
    assert _render(app, OURS["error_summary"], {"form": ExampleForm()}).strip() == ""


class _LaterDate(DateParts):
    """A subclass of the date field, as OptionalDateParts is: its ``type`` is its own class name."""


class DateForm(Form):
    born = DateParts("Date of birth")
    until = _LaterDate("Last date")


@pytest.mark.parametrize(("data", "targets"), [
    ({}, ["#born-day", "#until-day"]),
    ({"born[day]": "3", "born[year]": "1980", "until[day]": "1", "until[month]": "2"},
     ["#born-month", "#until-year"]),
    ({"born[day]": "3", "born[month]": "x", "born[year]": "1980", "until[day]": "1", "until[month]": "x",
      "until[year]": "y"}, ["#born-month", "#until-month"]),
])
def test_the_error_summary_links_a_date_to_its_first_wrong_box(app, data, targets):
    # The date's own id is its wrapper's, which cannot take focus: the link must land in a box (NHS.UK pattern).
    form = DateForm(MultiDict(data))
    assert not form.validate()
    ours = _render(app, OURS["error_summary"], {"form": form})
    assert [dict(t[2])["href"] for t in outline(ours) if t[0] == "start" and t[1] == "a"] == targets


BUTTONS = [
    {"text": "Save <my> diary"},
    {"text": "Save", "name": "action", "value": "save", "classes": "nhsuk-u-margin-right-3"},
    {"text": "Mark everyone", "name": "action", "value": "all", "variant": "secondary"},
    {"html": 'Dismiss<span class="nhsuk-u-visually-hidden"> the text to A &amp; B</span>',
     "classes": "nhsuk-button--secondary nhsuk-u-margin-bottom-0"},
    {"text": "Stop", "variant": "warning"},
]


@pytest.mark.parametrize("params", BUTTONS)
def test_the_button_macro_writes_the_markup_of_the_nhsuk_button(app, params):
    ours = _render(app, '{% from "macros/components.html" import button %}{{ button(params) }}', {"params": params})
    reference = _render(app, '{% from "nhsuk/components/button/macro.jinja" import button %}{{ button(params) }}',
                        {"params": params})
    assert outline(ours) == outline(reference)


def test_every_button_in_the_templates_uses_only_what_the_button_macro_writes():
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parent.parent / "portal" / "templates"
    calls = [call for path in templates.rglob("*.html")
             for call in re.findall(r"\bbutton\(\{(.*?)\}\)", path.read_text(encoding="utf-8"), flags=re.S)]
    assert len(calls) > 50
    keys = {key for call in calls for key in re.findall(r'"(\w+)":', call)}
    assert keys <= {"text", "html", "variant", "classes", "name", "value"}, keys


PAGINATIONS = [
    {"landmarkLabel": "Other weeks", "previous": {"href": "/a?b=1&c=2", "labelText": "Week 1: Pacing <& co>"},
     "next": {"href": "/b", "labelText": "Week 3: Sleep"}},
    {"landmarkLabel": "Other weeks", "previous": {"href": "/a", "labelText": "Week 1: Pacing"}},
    {"landmarkLabel": "Days", "next": {"href": "/b", "labelText": "Day after"}},
    {"previous": {"href": "/a"}, "next": {"href": "/b"}},
]


@pytest.mark.parametrize("params", PAGINATIONS)
def test_the_pagination_macro_writes_the_markup_of_the_nhsuk_pagination(app, params):
    ours = _render(app, '{% from "macros/components.html" import pagination %}{{ pagination(params) }}',
                   {"params": params})
    reference = _render(
        app, '{% from "nhsuk/components/pagination/macro.jinja" import pagination %}{{ pagination(params) }}',
        {"params": params})
    assert outline(ours) == outline(reference)


def test_every_back_link_is_written_as_the_nhsuk_back_link_macro_writes_it(app):
    import re
    from pathlib import Path

    reference = _render(app, '{% from "nhsuk/components/back-link/macro.jinja" import backLink %}'
                             '{{ backLink({"href": "/goals", "text": "Back to your goals"}) }}', {})
    assert outline(reference) == outline('<a class="nhsuk-back-link" href="/goals">Back to your goals</a>')
    templates = Path(__file__).resolve().parent.parent / "portal" / "templates"
    uses = [(path.name, line) for path in templates.rglob("*.html")
            for line in path.read_text(encoding="utf-8").splitlines() if "nhsuk-back-link" in line]
    assert len(uses) > 50
    written = re.compile(r'<a class="nhsuk-back-link" href="[^"]+">[^<]+</a>')
    assert [use for use in uses if not written.search(use[1]) or "__link" in use[1]] == []


def test_every_post_form_carries_the_one_csrf_field(app):
    # One mechanism: csrf_field() in every POST form, no WTForms token fields (they all had id="csrf_token",
    # a duplicate id on every page with two forms).
    import re
    from pathlib import Path

    templates = Path(__file__).resolve().parent.parent / "portal" / "templates"
    texts = {path.name: path.read_text(encoding="utf-8") for path in templates.rglob("*.html")}
    assert not [name for name, text in texts.items() if re.search(r"\.csrf_token(\(| \}\})", text)]
    posts = [(name, form) for name, text in texts.items()
             for form in re.findall(r'<form[^>]*method="post".*?</form>', text, flags=re.S)]
    assert len(posts) > 60
    assert [name for name, form in posts if "csrf_field()" not in form and "layout_fragment" not in form] == []
    # A GET form must not carry it: the token would land in the address, the history and the logs.
    gets = [(name, form) for name, text in texts.items()
            for form in re.findall(r'<form(?![^>]*method="post").*?</form>', text, flags=re.S)]
    assert len(gets) > 5
    assert [name for name, form in gets if "csrf" in form] == []
    with app.test_request_context("/"):
        from flask_wtf.csrf import generate_csrf

        field = _render(app, "{{ csrf_field() }}{{ csrf_field() }}", {})
        assert field == f'<input type="hidden" name="csrf_token" value="{generate_csrf()}">' * 2
