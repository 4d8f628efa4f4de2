"""The one error type a parser raises for a record it cannot read."""

from __future__ import annotations


class RecordError(ValueError):
    """A record that cannot be read, with the field (JSON pointer or page section) at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message
