"""The portal's frame: landing and per-role home pages, health check, language, errors."""
