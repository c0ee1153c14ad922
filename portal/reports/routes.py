"""Service reports for reception and admins: a page per report (filters, chart, table) and its CSV export.

Reception and admins run the service day to day (bookings, waiting lists, texts), so they see the reports.
Facilitators and clinicians do not: their pages are their own registers and day lists, and the reports add
nothing to marking a register. The reports show counts only, never a patient, so they are not audited as
record reads; a CSV export is audited, as data leaving the portal.
"""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, abort, render_template, request

from portal.audit.web import audit
from portal.auth.access import registration_staff_required
from portal.dates import london_today
from portal.db import utcnow
from portal.diary.services import spreadsheet_safe
from portal.extensions import db_session, domain, read_only
from portal.reports import services
from portal.reports.forms import ReportFilterForm
from portal.reports.pages import PAGES, charts_for, format_cell

bp = Blueprint("reports", __name__, url_prefix="/staff/reports")

report_staff_required = registration_staff_required


def _form() -> ReportFilterForm:
    return ReportFilterForm(request.args, domain=domain(), today=london_today(utcnow()))


@bp.route("")
@read_only
@report_staff_required
def index():
    return render_template("reports/index.html", pages=PAGES)


@bp.route("/<report>")
@read_only
@report_staff_required
def show(report: str):
    page = PAGES.get(report)
    if page is None:
        abort(404)
    form = _form()
    result, charts = None, []
    if form.validate():
        result = services.run(db_session(), domain(), report, form.filters)
        charts = charts_for(page, result, form.filters)
    csv_query = request.query_string.decode("ascii", "replace")
    return render_template("reports/report.html", page=page, form=form, report=result, charts=charts,
                           format_cell=format_cell, csv_url=f"/staff/reports/{report}.csv"
                           + (f"?{csv_query}" if csv_query else ""), pages=PAGES)


@bp.route("/<report>.csv")
@report_staff_required
def export(report: str):
    if report not in PAGES:
        abort(404)
    form = _form()
    if not form.validate():
        problems = "; ".join(message for field in form for message in field.errors)
        return Response(f"The filters are not valid: {problems}\n", status=400, mimetype="text/plain")
    result = services.run(db_session(), domain(), report, form.filters, detail=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for cells in services.rows_for_csv(result):
        writer.writerow([spreadsheet_safe(cell) if isinstance(cell, str) else ("" if cell is None else cell)
                         for cell in cells])
    filters = form.filters
    name = f"{report}-{filters.first_month:%Y-%m}-to-{filters.last_month:%Y-%m}.csv"
    audit("report_exported", detail=f"{report} {filters.first_month:%Y-%m} to {filters.last_month:%Y-%m}"
          f" team={filters.team or 'all'} service={filters.service or 'all'}")
    # A byte-order mark, so that Excel reads the file as UTF-8 (the diary export does the same).
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
