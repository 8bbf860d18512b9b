"""Rubrics: versioned YAML data files (this folder), their fingerprints and the active choice."""
