"""Bulk import of organizations and programs from CSV files for coordinators."""
