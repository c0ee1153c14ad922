"""Who may see a page: decorators for views, by role."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, render_template, request
from flask_login import current_user, login_required

from portal.auth.models import Role
from portal.patients.models import Patient


def roles_required(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Anonymous visitors go to sign-in; signed-in users of another role get 403."""
    allowed = {role.value for role in roles}

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_user.role not in allowed:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


patient_required = roles_required(Role.PATIENT)
staff_required = roles_required(Role.FACILITATOR, Role.CLINICIAN, Role.RECEPTION, Role.ADMIN)
# Registers, day lists and did-not-attend reviews: the people who run sessions and clinics.
CLINICAL_ROLES = frozenset({Role.FACILITATOR.value, Role.CLINICIAN.value, Role.ADMIN.value})
clinical_staff_required = roles_required(Role.FACILITATOR, Role.CLINICIAN, Role.ADMIN)
registration_staff_required = roles_required(Role.RECEPTION, Role.ADMIN)


def current_patient() -> Patient:
    """The signed-in patient's own record: patient-owned data is always reached through it."""
    patient = current_user.patient
    if patient is None:
        abort(403)
    return patient


def refuse_new_bookings_after_discharge(blueprint: Blueprint, endpoints: set[str]) -> None:
    """A discharged patient (a clinician's recorded decision: back to their referrer) books nothing new on
    ``endpoints`` of ``blueprint``; they may still see and cancel what they hold."""

    @blueprint.before_request
    def _refuse():
        if request.endpoint not in endpoints or not current_user.is_authenticated:
            return None
        patient = current_user.patient
        if patient is None or not patient.discharged:
            return None
        return render_template("patients/discharged.html", patient=patient), 403
