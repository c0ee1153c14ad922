"""What reception is told after putting newer triage details on a registered patient's record."""

from __future__ import annotations

from portal.messaging.routes import texted_note
from portal.patients.models import Patient
from portal.patients.onboarding import Update
from portal.templating import local_datetime


def retriage_confirmation(patient: Patient, update: Update) -> list[tuple[str, str]]:
    """The messages to flash, with their categories: what changed, then what is left for a person to decide."""
    name = patient.full_name
    if not update.changed:
        return [(f"Nothing has changed: {name}'s record already holds these details.", "info")]
    if "tier" in update.changed:
        told = f"{name} is now in Tier {patient.tier} (was Tier {update.old_tier})."
    else:
        told = f"{name}'s record is updated with the newer triage details."
    if update.reinvited:
        told += (" We have texted a new set-up link to their new mobile." if patient.may_text else
                 " A new set-up link is ready, but they do not accept texts.")
    if update.closed:
        lists = "a waiting list" if len(update.closed) == 1 else f"{len(update.closed)} waiting lists"
        told += f" They are off {lists} that could never offer them a place now." + texted_note(patient.may_text)
    messages = [(told, "success")]
    if update.still_booked:
        tiers = " and Tier ".join(sorted({str(item.tier) for item in update.still_booked}))
        items = "; ".join(f"{item.service_name}, {'group starting ' if item.kind == 'seat' else ''}"
                          f"{local_datetime(item.starts_at)}" for item in update.still_booked)
        messages.append((f"Still booked from Tier {tiers}: {items}. Nothing was cancelled: cancel or keep each one "
                         "on this record.", "warning"))
    return messages
