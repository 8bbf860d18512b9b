"""The center's settings, changed at run time on the settings page (region, center, deadlines,
time zone), and the production calendar of working days built from them."""
