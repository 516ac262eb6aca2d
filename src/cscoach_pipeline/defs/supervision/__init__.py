"""Supervision: what a supervisor reads per day (agent scorecards, team trends, the review
queue), kept current as consultations are scored."""
