"""Errors for the host side: one line naming what went wrong and the fix."""

from harness.errors import HarnessError


class ArtifactError(HarnessError):
    """Printed as `error: <message>`; exit code 2 unless given (1 is reserved for FAIL verdicts)."""
