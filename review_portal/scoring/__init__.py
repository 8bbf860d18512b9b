"""Scoring: score sheets, their autosaved drafts, submission and the score computation."""
