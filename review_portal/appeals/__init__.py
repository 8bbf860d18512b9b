"""Appeals (апелляция): a provider contests a *revision* or *rejected* conclusion; a new
panel re-scores the program; the appeal is upheld (a new conclusion) or dismissed (a
numbered decision on the appeal)."""
