"""Property-based tests (hypothesis): OneID against a reference model, and merge/unmerge as an
exact round trip of every fact."""

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.errors import Conflict
from app.models import Customer, FollowRelation, FollowStatus, IdentityType, MergeRecord, utcnow
from app.services import merge, oneid
from tests import factories
from tests.oneid.facts import snapshot

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# No unionids or phones here: their conflict rules are tested by example elsewhere, and the
# reference models the plain rule (a link joins, a merge joins, an unmerge splits).
TYPES = [IdentityType.external_userid, IdentityType.mp_openid, IdentityType.oa_openid, IdentityType.pending_id]
SLOTS = 6
_example = itertools.count()


class Reference:
    """The intended partition, kept with a union-find over customer "atoms" (one per customer
    ever created, oldest first): each identity belongs to the atom it was first attached to,
    and a customer is an atom with everything merged into it. Unions carry the merge that made
    them, so an unmerge removes exactly that union; it is refused, as in the service, when the
    merge's survivor has been merged into another since."""

    def __init__(self):
        self.parent: list[int | None] = []  # atom → the atom it was merged into
        self.home: dict[int, int] = {}  # identity slot → atom
        self.merges: list[list] = []  # [survivor, absorbed, active]

    def root(self, atom: int) -> int:
        while self.parent[atom] is not None:
            atom = self.parent[atom]
        return atom

    def _union(self, survivor: int, absorbed: int) -> None:
        self.parent[absorbed] = survivor
        self.merges.append([survivor, absorbed, True])

    def link(self, slots) -> bool:
        """Returns whether a customer was created."""
        roots = sorted({self.root(self.home[s]) for s in slots if s in self.home})
        created = not roots
        if created:
            self.parent.append(None)
            roots = [len(self.parent) - 1]
        for other in roots[1:]:
            self._union(roots[0], other)
        for s in slots:
            self.home.setdefault(s, roots[0])
        return created

    def merge(self, x: int, y: int) -> str:
        if x not in self.home or y not in self.home:
            return "unknown"
        roots = sorted({self.root(self.home[x]), self.root(self.home[y])})
        if len(roots) == 1:
            return "same"
        self._union(*roots)
        return "ok"

    def unmerge(self, index: int) -> str:
        survivor, absorbed, _ = self.merges[index]
        if self.parent[survivor] is not None:
            return "refused"
        self.parent[absorbed] = None
        self.merges[index][2] = False
        return "ok"

    def partition(self) -> set[frozenset]:
        groups: dict[int, set] = {}
        for slot, atom in self.home.items():
            groups.setdefault(self.root(atom), set()).add(slot)
        return {frozenset(g) for g in groups.values()}


ops = st.lists(
    st.one_of(
        st.tuples(st.just("link"), st.sets(st.integers(0, SLOTS - 1), min_size=1, max_size=3)),
        st.tuples(st.just("merge"), st.integers(0, SLOTS - 1), st.integers(0, SLOTS - 1)),
        st.tuples(st.just("unmerge"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=14,
)


@SETTINGS
@given(ops=ops)
# Always try the shapes random search finds slowly: a merge whose survivor was merged since
# (refused, then allowed once the later one is undone), and a link made while merged.
@example(
    ops=[
        ("link", {0}),
        ("link", {1}),
        ("link", {2}),
        ("merge", 1, 2),
        ("merge", 0, 1),
        ("unmerge", 0),
        ("unmerge", 1),
        ("unmerge", 0),
    ]
)
@example(ops=[("link", {0}), ("link", {1}), ("link", {0, 1, 2}), ("link", {2, 3}), ("unmerge", 0), ("link", {3, 4})])
def test_any_sequence_matches_the_reference_partition(db, corp, ops):
    """Does any sequence of link, merge and unmerge end in the reference model's partition, each
    group answered by the customer of its oldest atom?"""
    prefix = f"x{next(_example)}"
    ident = {s: (TYPES[s % len(TYPES)], f"{prefix}-{s}") for s in range(SLOTS)}
    first_merge = db.session.scalar(select(MergeRecord.id).order_by(MergeRecord.id.desc()).limit(1)) or 0
    ref, atom_ids = Reference(), []
    for op in ops:
        if op[0] == "link":
            slots = sorted(op[1])
            customer_id = oneid.link(corp.id, [ident[s] for s in slots], "test")
            if ref.link(slots):
                atom_ids.append(customer_id)
        elif op[0] == "merge":
            expected = ref.merge(op[1], op[2])
            if expected == "unknown":
                continue
            ids = [oneid.customer_id_for(corp.id, *ident[s]) for s in (op[1], op[2])]
            try:
                merge.merge(corp.id, ids, actor="test", reason="property")
                db.session.commit()
                outcome = "ok"
            except Conflict:
                db.session.rollback()
                outcome = "same"
            assert outcome == expected
        else:
            active = [i for i, m in enumerate(ref.merges) if m[2]]
            if not active:
                continue
            index = active[op[1] % len(active)]
            records = db.session.scalars(
                select(MergeRecord.id).where(MergeRecord.id > first_merge).order_by(MergeRecord.id)
            ).all()
            expected = ref.unmerge(index)
            try:
                merge.unmerge(corp.id, records[index], actor="test", reason="property")
                db.session.commit()
                outcome = "ok"
            except Conflict:
                db.session.rollback()
                outcome = "refused"
            assert outcome == expected
    owners = {s: oneid.customer_id_for(corp.id, *ident[s]) for s in ref.home}
    groups: dict[int, set] = {}
    for slot, owner in owners.items():
        groups.setdefault(owner, set()).add(slot)
    assert {frozenset(g) for g in groups.values()} == ref.partition()
    for slot, owner in owners.items():
        assert owner == atom_ids[ref.root(ref.home[slot])]
    assert all(db.session.get(Customer, owner).merged_into_id is None for owner in owners.values())


@pytest.fixture
def cast(db, corp):
    """Three reps and three tags shared by every example."""
    return [factories.staff(corp) for _ in range(3)], [factories.tag(corp, f"t{i}") for i in range(3)]


follow_spec = st.fixed_dictionaries(
    {
        "tags": st.sets(st.integers(0, 2)),
        "status": st.sampled_from([FollowStatus.active, FollowStatus.deleted, FollowStatus.pending]),
        "remark": st.sampled_from(["", "vip", "call back"]),
        "days_ago": st.integers(0, 9),
        "state": st.sampled_from(["", "expo", "web"]),
    }
)
customer_spec = st.fixed_dictionaries(
    {
        "types": st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True),
        "follows": st.dictionaries(st.integers(0, 2), follow_spec, max_size=3),
        "name": st.sampled_from(["", "Wang", "王伟"]),
        "corp_name": st.sampled_from(["", "Acme"]),
        "gender": st.sampled_from([0, 1, 2]),
        "first_channel": st.sampled_from([None, "expo"]),
        "last_channel": st.sampled_from([None, "web", "expo"]),
    }
)


@SETTINGS
@given(specs=st.lists(customer_spec, min_size=2, max_size=3), auto=st.booleans())
def test_merge_then_unmerge_restores_every_fact(db, corp, cast, specs, auto):
    """Does merging two or three customers (automatically or by hand) and undoing the merges,
    newest first, restore every fact row exactly?"""
    reps, tags = cast
    prefix = f"f{next(_example)}"
    now = utcnow()
    customers, firsts = [], []
    for n, spec in enumerate(specs):
        identities = [(t, f"{prefix}-{n}-{t}") for t in spec["types"]]
        row = factories.customer(
            corp,
            name=spec["name"],
            identities=identities,
            corp_name=spec["corp_name"],
            gender=spec["gender"],
            first_channel=spec["first_channel"],
            last_channel=spec["last_channel"],
        )
        for rep, f in spec["follows"].items():
            factories.follow(
                corp,
                reps[rep],
                row,
                tags=[tags[t] for t in sorted(f["tags"])],
                status=f["status"],
                remark=f["remark"],
                state=f["state"],
                added_at=now - timedelta(days=f["days_ago"]),
                deleted_at=now if f["status"] == FollowStatus.deleted else None,
            )
        customers.append(row.id)
        firsts.append(identities[0])
    before = snapshot(db, customers)
    if auto:
        assert oneid.resolve_or_create(corp.id, firsts, "test").id == customers[0]
        records = db.session.scalars(select(MergeRecord).where(MergeRecord.survivor_id == customers[0])).all()
    else:
        records = merge.merge(corp.id, customers, actor="test", reason="property")
    db.session.commit()
    # Merged: the oldest holds every identity, and every rep that followed anyone follows it.
    held = db.session.scalars(select(FollowRelation.staff_id).where(FollowRelation.customer_id == customers[0])).all()
    assert set(held) == {reps[r].id for spec in specs for r in spec["follows"]}
    for ident in firsts:
        assert oneid.customer_id_for(corp.id, *ident) == customers[0]
    for record in sorted(records, key=lambda r: r.id, reverse=True):
        merge.unmerge(corp.id, record.id, actor="test", reason="property")
        db.session.commit()
    assert snapshot(db, customers) == before
