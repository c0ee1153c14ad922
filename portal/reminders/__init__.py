"""Reminders: planned into the outbox ahead of appointments and group sessions, or phoned by reception."""
