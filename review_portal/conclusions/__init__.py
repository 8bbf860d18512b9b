"""Conclusions (экспертные заключения): numbered, immutable, verifiable PDFs."""
