"""Simulated seasons: a whole assessment season run through the portal's own services
(the ``simulate`` command), for demonstrations, load and end-to-end checks."""
