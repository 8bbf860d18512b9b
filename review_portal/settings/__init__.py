"""Settings a coordinator can change at run time (region, center, policies, holidays)."""
