"""A results folder on the host: its files, their checks, run.json, integrity and the machine's state."""
