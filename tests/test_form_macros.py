"""The form macros that write NHS.UK markup out by hand must give the markup the NHS.UK macros give."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from wtforms import Form, RadioField, SelectChoice


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


class PainForm(Form):
    pain = RadioField(choices=[SelectChoice("0", "0 – no pain"), SelectChoice("1", "1 <& co>"), SelectChoice("2", "2")])


REFERENCE = """{% from "nhsuk/components/radios/macro.jinja" import radios %}
{% from "macros/forms.html" import warning_hint %}
{% set items = [] %}
{% for choice in field.iter_choices() %}
  {% do items.append({"value": choice.value, "text": choice.label, "checked": choice.selected}) %}
{% endfor %}
{{ radios({
  "idPrefix": field.id, "name": field.name, "inline": inline,
  "fieldset": {"legend": {"text": legend, "size": size}},
  "hint": {"html": warning_hint(hint, warning, field.id)} if warning else ({"text": hint} if hint else undefined),
  "errorMessage": {"text": field.errors[0]} if field.errors else undefined,
  "items": items
}) }}"""

OURS = """{% from "macros/forms.html" import radio_field %}
{{ radio_field(field, legend, hint=hint, inline=inline, size=size, warning=warning) }}"""


@pytest.mark.parametrize(("data", "error", "hint", "warning", "inline", "size"), [
    ({}, None, None, None, False, "s"),
    ({"pain": "1"}, None, "0 is no pain at all", None, True, "m"),
    ({"pain": "2"}, "Choose how bad your pain was", "A hint", None, False, "l"),
    ({}, "Choose one", None, None, True, "s"),
    ({"pain": "0"}, None, "A hint", "Outside the catchment", False, "s"),
])
def test_radio_field_writes_the_nhsuk_radios_markup(app, data, error, hint, warning, inline, size):
    form = PainForm(data=data)
    if error:
        form.pain.errors = [error]
    values = {"field": form.pain, "legend": "Pain <today>", "hint": hint, "warning": warning, "inline": inline,
              "size": size}
    with app.test_request_context("/"):
        reference = app.jinja_env.from_string(REFERENCE).render(**values)
        ours = app.jinja_env.from_string(OURS).render(**values)
    assert "nhsuk-radios__input" in ours
    assert outline(ours) == outline(reference)
