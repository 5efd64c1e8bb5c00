"""Use cases: each opens the transaction it needs and calls repositories."""
