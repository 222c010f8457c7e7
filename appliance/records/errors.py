"""The records layer's exception tree, one branch under ``appliance.errors.RecordError``.

Every reader in ``appliance.records`` raises one of these on bad input, never a bare
``ValueError``, ``IndexError`` or ``struct.error``: callers catch ``RecordError`` (or a narrower
class) and show the message, which names the record and field at fault where there is one.
"""

from __future__ import annotations

from appliance.errors import RecordError


class TemplateError(RecordError):
    """An ISO/IEC 19794-2 or ANSI INCITS 378 minutiae template cannot be read or written."""


class WsqError(RecordError):
    """A WSQ codestream cannot be read, decoded or encoded."""


class ProfileError(RecordError):
    """An agency profile name is unknown or a profile is inconsistent."""


class TransactionError(RecordError):
    """An ANSI/NIST-ITL transaction cannot be read, written or built.

    ``record_index`` counts records from 0 (the Type-1 record), ``record_type`` is the record's
    type number and ``field`` the field tag such as ``"14.011"``; each is ``None`` when the
    problem is not located in one.
    """

    def __init__(
        self,
        message: str,
        *,
        record_index: int | None = None,
        record_type: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.record_index = record_index
        self.record_type = record_type
        self.field = field
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.record_index is not None:
            kind = f" (Type-{self.record_type})" if self.record_type is not None else ""
            parts.append(f"record {self.record_index}{kind}")
        elif self.record_type is not None:
            parts.append(f"Type-{self.record_type}")
        if self.field is not None:
            parts.append(f"field {self.field}")
        where = ", ".join(parts)
        return f"{where}: {self.message}" if where else self.message
