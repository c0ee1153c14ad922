"""Outcome questionnaires: PHQ-9, GAD-7, pain ratings and the global impression of change, with the PHQ-9
item 9 safety flag that clinicians acknowledge."""
