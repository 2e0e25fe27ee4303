"""The message a component function receives and emits (one shape for both sailor dialects)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Keys that make a dict a message rather than bare data.
MESSAGE_KEYS = ("data", "metadata", "attachments", "id", "headers", "passthrough")


@dataclass
class Message:
    """An incoming or emitted message.

    `data` is the body (elastic.io calls it `body`, OIH `data`); the dialects translate at the wire,
    so components only ever see this shape.
    """

    data: Any = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    attachments: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    id: str | None = None
    passthrough: dict = field(default_factory=dict)

    @classmethod
    def from_any(cls, obj: Any) -> Message:
        """Accept a Message, a message dict (has the key "data") or bare data (anything else).

        Bare data is wrapped rather than rejected so that `return {"id": 1}` and message files
        holding only the body both work, as the component contract promises.
        """
        if isinstance(obj, Message):
            return obj
        if obj is None:
            return cls()
        if isinstance(obj, dict) and "data" in obj:
            return cls(
                data=obj["data"],
                metadata=obj.get("metadata") or {},
                attachments=obj.get("attachments") or {},
                headers=obj.get("headers") or {},
                id=obj.get("id"),
                passthrough=obj.get("passthrough") or {},
            )
        return cls(data=obj)

    def to_dict(self) -> dict:
        """data, metadata and attachments always; id, headers and passthrough only when set."""
        out: dict[str, Any] = {
            "data": self.data,
            "metadata": self.metadata,
            "attachments": self.attachments,
        }
        if self.id is not None:
            out["id"] = self.id
        if self.headers:
            out["headers"] = self.headers
        if self.passthrough:
            out["passthrough"] = self.passthrough
        return out
