"""OneID bookkeeping: merge records (enough to unmerge exactly), merge suggestions from weak
signals, and identity conflicts flagged for review.

These tables reference customers but are not facts *of* a customer: a merge must not move
them, so they carry ``info={"oneid": "keep"}``, which the merge's table discovery honours.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, CorpScoped, Timestamps
from .customer import Customer

# Tables marked so are skipped when a merge moves a customer's facts.
KEEP = {"oneid": "keep"}


class MergeKind(enum.StrEnum):
    auto = "auto"  # a strong link joined two customers
    manual = "manual"  # an admin merged them
    suggestion = "suggestion"  # an admin accepted a merge suggestion


class MergeStatus(enum.StrEnum):
    active = "active"
    undone = "undone"


class MergeRecord(CorpScoped, Timestamps, Base):
    """One customer absorbed into another, with every row the merge touched.

    ``moved`` = {"<table>.<column>": {"pk": [pk column names], "rows": [[pk values before the
    move], ...]}}; ``folds`` = rows that could not move (a unique constraint already held by the
    survivor, e.g. both customers followed by the same rep) and were folded into the survivor's
    row, each with what to undo; ``kept`` = such rows with no fold rule, left on the absorbed
    customer; ``profile`` = the survivor's fields the merge filled, {field: [before, after]}.
    """

    __tablename__ = "merge_record"
    __table_args__ = {"info": KEEP}

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    absorbed_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    kind: Mapped[MergeKind] = mapped_column(Enum(MergeKind, native_enum=False, length=16))
    status: Mapped[MergeStatus] = mapped_column(
        Enum(MergeStatus, native_enum=False, length=16), default=MergeStatus.active, index=True
    )
    # "user:<id>" or "system"; what triggered it (api, wecom_callback, mp_login, mp_phone...).
    actor: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    moved: Mapped[dict] = mapped_column(default=dict)
    folds: Mapped[list] = mapped_column(default=list)
    kept: Mapped[dict] = mapped_column(default=dict)
    profile: Mapped[dict] = mapped_column(default=dict)
    undone_at: Mapped[datetime | None]
    undone_by: Mapped[str | None] = mapped_column(String(64))
    undo_reason: Mapped[str | None] = mapped_column(Text)


class SuggestionStatus(enum.StrEnum):
    open = "open"
    accepted = "accepted"
    rejected = "rejected"
    merged = "merged"  # the two became one by another path (a strong link, a manual merge)


class MergeSuggestion(CorpScoped, Timestamps, Base):
    """Two customers a weak signal says may be one person; an admin accepts or rejects.

    One row per pair (lower id first): a rejected pair is not suggested again.
    """

    __tablename__ = "merge_suggestion"
    __table_args__ = (UniqueConstraint("corp_id", "customer_a_id", "customer_b_id"), {"info": KEEP})

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_a_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    customer_b_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    # same_phone, same_name_company
    reason: Mapped[str] = mapped_column(String(32))
    evidence: Mapped[dict] = mapped_column(default=dict)
    status: Mapped[SuggestionStatus] = mapped_column(
        Enum(SuggestionStatus, native_enum=False, length=16), default=SuggestionStatus.open, index=True
    )
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("merge_record.id"))


class ConflictKind(enum.StrEnum):
    unionid = "unionid"  # the customers would hold two different unionids
    verified_phone = "verified_phone"  # two customers each hold a different verified phone


class ConflictStatus(enum.StrEnum):
    open = "open"
    dismissed = "dismissed"
    merged = "merged"


class IdentityConflict(CorpScoped, Timestamps, Base):
    """A strong link that was refused because it would join conflicting identities.

    ``key`` makes flagging idempotent (a retried callback flags once): kind, the customers
    and a digest of the refused identities.
    """

    __tablename__ = "identity_conflict"
    __table_args__ = (UniqueConstraint("corp_id", "key"), {"info": KEEP})

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[ConflictKind] = mapped_column(Enum(ConflictKind, native_enum=False, length=16))
    customer_ids: Mapped[list] = mapped_column(default=list)
    # The link that was refused: [[type, value], ...].
    identities: Mapped[list] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ConflictStatus] = mapped_column(
        Enum(ConflictStatus, native_enum=False, length=16), default=ConflictStatus.open, index=True
    )
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    resolution_reason: Mapped[str | None] = mapped_column(Text)


# The same-name-and-company suggestion looks customers up by (corp, corp_name, name); without
# this index that lookup would scan every customer of the corp on each new customer. Only
# customers with a company are ever looked up, so the others (most) stay out of it.
Index(
    "ix_customer_corp_id_corp_name_name",
    Customer.corp_id,
    Customer.corp_name,
    Customer.name,
    postgresql_where=Customer.corp_name != "",
    sqlite_where=Customer.corp_name != "",
)
