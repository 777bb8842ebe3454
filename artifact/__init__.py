"""Host side: launch the pinned container (or run natively), collect, check, report. No torch here."""

__version__ = "0.1.0"
