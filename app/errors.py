"""Domain exceptions: problems a person can fix, shown to them as one readable line."""

from __future__ import annotations


class PasokError(Exception):
    """Bad input or a refused action. The message is shown as is (English, for the CLI and API);
    views may translate it."""


class ValidationError(PasokError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(PasokError):
    pass
