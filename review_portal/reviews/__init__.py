"""Reviews: one assessment case of one program version, and its timeline of states."""
