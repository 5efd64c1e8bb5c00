"""Pure rules, no I/O, time passed in as `now`: campaign configuration and its cross-field checks,
status machines and the edit matrix, schedules and legal hours, when a lead may be dialed (windows,
caps), pacing, retries, outcomes, caller-id choice, templates and the agent hand-off, phone numbers,
lead rows of an import, webhook rules."""
