"""User-facing errors: one line, a fix, exit code 2 (bad input) unless said otherwise."""


class HarnessError(Exception):
    """An error meant for the user: printed as one line, never as a traceback."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class RecordError(HarnessError):
    """A record file (JSON) is missing, truncated, or has a wrong/missing field."""
