"""Pure rules: no I/O, time passed in as `now`."""
