"""The request side of auditing: who is asking, from which address, under which request id."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request
from flask_login import current_user

from portal.audit import services
from portal.audit.services import Actor

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def init_request_ids(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response


def current_actor() -> Actor:
    signed_in = current_user and current_user.is_authenticated
    return Actor(
        user_id=current_user.id if signed_in else None,
        role=current_user.role if signed_in else "anonymous",
        ip=request.remote_addr,
        request_id=g.get("request_id"),
    )


def audit(action: str, *, patient_id: int | None = None, detail: str = "") -> None:
    """Record an event in the request's transaction: it commits, or rolls back, with the change."""
    from portal.extensions import db_session

    services.record(db_session(), current_actor(), action, patient_id=patient_id, detail=detail)

