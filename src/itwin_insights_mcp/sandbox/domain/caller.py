"""Who acts, on which store: the one thing every write rule needs from a request."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import Store, now_iso

__all__ = ["Caller"]


@dataclass(frozen=True)
class Caller:
    """The signed-in user (by email) acting on the sandbox's store."""

    store: Store
    user_email: str

    def created(self) -> dict[str, str]:
        """The stamps of a new entity: created and last modified now, by the caller."""
        now = now_iso()
        return {"createdOn": now, "createdBy": self.user_email, "modifiedOn": now, "modifiedBy": self.user_email}

    def modified(self) -> dict[str, str]:
        """The stamps of a change: modified now, by the caller."""
        return {"modifiedOn": now_iso(), "modifiedBy": self.user_email}
