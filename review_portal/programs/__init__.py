"""Programs (ДООП), their immutable versions and their documents."""
