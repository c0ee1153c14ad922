"""What each report page shows: its title and explanation, and which figures its charts draw."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import Markup

from portal.reports import svg
from portal.reports.services import Column, Filters, Report, month_label


@dataclass(frozen=True)
class ChartSpec:
    title: str
    kind: str  # bar or line
    series: tuple[tuple[str, str], ...]  # (row key, series name)
    unit: str = ""
    y_max: float | None = None


@dataclass(frozen=True)
class Page:
    name: str
    title: str
    summary: str
    explanation: str
    charts: tuple[ChartSpec, ...]
    # The table's first column heads each row (a month, or a measure).
    by_month: bool = True


PAGES: dict[str, Page] = {
    page.name: page
    for page in (
        Page("triaged", "Patients triaged", "Patients triaged each month, by tier and team.",
             "Patients are counted in the month SPOA triaged them (the triage date on their record).",
             (ChartSpec("Patients triaged each month", "bar", (("total", "Patients triaged"),), "patients"),)),
        Page("waits", "Waits from triage",
             "How long patients wait from triage to their first booking and first attendance.",
             "Patients are grouped by the month they were triaged. A booking is a course seat or a 1:1 appointment "
             "(even if later cancelled); an attendance is a mark of attended or attended late. Only patients who "
             "have got that far count, so recent months show short waits until everyone has booked. The 90th "
             "percentile is the wait that 9 in 10 patients beat.",
             (ChartSpec("Days from triage to first booking", "line",
                        (("booking_median", "Median"), ("booking_p90", "90th percentile")), "days"),
              ChartSpec("Days from triage to first attendance", "line",
                        (("attendance_median", "Median"), ("attendance_p90", "90th percentile")), "days"))),
        Page("cohort-fill", "Cohort fill rate", "How full the group courses are, by the month they start.",
             "Seats taken (held waiting-list offers included) over places, for the cohorts that were not cancelled, "
             "by the month of their first session.",
             (ChartSpec("Cohort fill rate by month of first session", "bar", (("fill", "Fill rate"),), "%", 100),)),
        Page("attendance", "Attendance and did not attend",
             "Attendance and DNA rates of group sessions and 1:1 appointments.",
             "From the marks on registers and day lists, by the month of the session or appointment. Both rates "
             "are out of the patients expected: everyone marked except those who cancelled with notice. Late "
             "cancellations count as expected but not attended.",
             (ChartSpec("Attendance and DNA rates by month", "line",
                        (("attendance_rate", "Attendance rate"), ("dna_rate", "DNA rate")), "%", 100),)),
        Page("texts", "Texts sent and their cost",
             "Texts written, sent and failed each month, with the segments billed.",
             "Texts are counted in the month they were written. Segments are billed for every text the provider "
             "took; the cost uses the price per segment in config/policy.toml. Service: the booking the text is "
             "about (invitations and codes belong to no service).",
             (ChartSpec("Texts sent and failed by month", "bar", (("sent", "Sent"), ("failed", "Failed")), "texts"),)),
        Page("questionnaires", "Questionnaire change from baseline",
             "The mean change in each questionnaire score from baseline, at the end of a course and at follow-up.",
             "For patients who submitted both the baseline and the later questionnaire of the same set, by the "
             "month the later one was submitted. A negative change is a fall in the score: better, for the measures "
             "where lower is better.",
             (ChartSpec("Mean change from baseline", "bar", (("end_change", "At the end"),
                                                                         ("follow_up_change", "At follow-up")),
                        "points"),),
             by_month=False),
    )
}


def _description(report: Report, spec: ChartSpec, labels: list[str], filters: Filters) -> str:
    period = f"{month_label(filters.first_month)} to {month_label(filters.last_month)}"
    parts = [f"{spec.title}, {period}."]
    for key, name in spec.series:
        values = [(label, row.get(key)) for label, row in zip(labels, report.rows, strict=True)
                  if row.get(key) is not None]
        if not values:
            parts.append(f"{name}: no data.")
            continue
        low = min(values, key=lambda v: v[1])
        high = max(values, key=lambda v: v[1])
        parts.append(f"{name}: lowest {format_cell(Column(key, name, _kind(spec)), low[1])} ({low[0]}), "
                     f"highest {format_cell(Column(key, name, _kind(spec)), high[1])} ({high[0]}).")
    parts.append("The table below gives every figure.")
    return " ".join(parts)


def _kind(spec: ChartSpec) -> str:
    return "percent" if spec.unit == "%" else "number"


def charts_for(page: Page, report: Report, filters: Filters) -> list[tuple[str, Markup]]:
    """Each chart of the page, with the title the page shows above it."""
    if not report.rows:
        return []
    labels = [row["label"] for row in report.rows]
    draw = {"bar": svg.bar_chart, "line": svg.line_chart}
    charts = []
    for number, spec in enumerate(page.charts, start=1):
        series = [svg.Series(name, [row.get(key) for row in report.rows]) for key, name in spec.series]
        charts.append((spec.title, draw[spec.kind](
            chart_id=f"chart-{page.name}-{number}", title=spec.title,
            description=_description(report, spec, labels, filters), labels=_axis_labels(page, report),
            series=series, unit=spec.unit, y_max=spec.y_max)))
    return charts


def _axis_labels(page: Page, report: Report) -> list[str]:
    # "Nov 2026": the axis shows the month with the year under it; a measure shows its short name.
    return [row.get("short", row["label"]) for row in report.rows]


def format_cell(column: Column, value: object) -> str:
    """A figure as the table shows it ("–" for none)."""
    if value is None:
        return "–"
    if column.kind == "text":
        return str(value)
    if column.kind == "percent":
        return f"{value:.1f}%"
    if column.kind == "money":
        return f"£{value:,.2f}"
    if column.kind in ("days", "number"):
        number = float(value)  # type: ignore[arg-type]
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.1f}"
    return f"{value:,}"
