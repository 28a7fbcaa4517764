"""Notes reps and admins keep on a customer (the 360 view's free text)."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CorpScoped, Timestamps

NOTE_MAX_LENGTH = 2000


class CustomerNote(CorpScoped, Timestamps, Base):
    """A note about a customer. ``customer_id`` is a foreign key to ``customer.id``, so a OneID
    merge moves the notes to the survivor (and an unmerge moves them back) with no rule of its
    own."""

    __tablename__ = "customer_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    # The author's staff row when a rep wrote it (names the rep even after their account goes).
    author_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    body: Mapped[str] = mapped_column(String(NOTE_MAX_LENGTH))
