"""Service reports: patients triaged, waits, cohort fill, attendance, texts and questionnaire change."""
