"""Staff view of the audit trail, filtered by patient, user and date."""

from __future__ import annotations

from flask import Blueprint, render_template, request
from wtforms import DateField, IntegerField
from wtforms.validators import NumberRange, Optional

from portal.audit import services
from portal.audit.web import audit
from portal.auth.access import roles_required
from portal.auth.models import Role
from portal.extensions import db_session
from portal.forms import PortalForm

bp = Blueprint("audit", __name__, url_prefix="/staff/audit")


class AuditFilterForm(PortalForm):
    class Meta:
        csrf = False  # a GET search form: it changes nothing

    patient = IntegerField("Patient record number", validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    user = IntegerField("Staff or patient account number", validators=[Optional(), NumberRange(min=1, max=2**31 - 1)])
    since = DateField("From (YYYY-MM-DD)", validators=[Optional()])
    until = DateField("To (YYYY-MM-DD)", validators=[Optional()])


@bp.route("")
@roles_required(Role.ADMIN, Role.RECEPTION)
def trail():
    form = AuditFilterForm(request.args)
    events = []
    if form.validate():
        events = services.search(
            db_session(), patient_id=form.patient.data, user_id=form.user.data,
            since=form.since.data, until=form.until.data,
        )
        audit("audit_trail_viewed", patient_id=form.patient.data)
    names = services.actor_names(db_session(), events)
    return render_template("audit/trail.html", form=form, events=events, names=names)
