"""Background jobs: long operations (issuing hundreds of conclusions ...) run outside the
request, report their progress and can be resumed after an interruption."""
