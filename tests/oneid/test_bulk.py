"""bulk_link: the set-based import ends where linking one by one would."""

from sqlalchemy import select

from app.models import Corp, Customer, Identity, IdentityConflict, IdentityType
from app.services import oneid
from tests import factories

EXT, UNION, MP, OA, PHONE = (
    IdentityType.external_userid,
    IdentityType.unionid,
    IdentityType.mp_openid,
    IdentityType.oa_openid,
    IdentityType.phone,
)
LINKS = [
    [(EXT, "e1"), (UNION, "u1")],  # attaches to an existing customer
    [(EXT, "e2"), (UNION, "u2")],  # a new person across two links
    [(UNION, "u2"), (MP, "m2")],
    [(EXT, "e3"), (UNION, "u3a")],  # a new person claiming two unionids: a conflict
    [(EXT, "e3"), (UNION, "u3b")],
    [(EXT, "e4"), (PHONE, "138 0013 8000")],  # a phone: weak, one by one
    [(EXT, "e1")],  # known already
    [(MP, "m5"), (EXT, "e5")],  # joins two existing customers: a merge
    [(OA, "o6")],
]


def _state(db, corp_id):
    """The partition of identities into surviving customers, and the conflicts flagged."""
    db.session.expire_all()
    groups: dict[int, set] = {}
    for type_, value, customer_id in db.session.execute(
        select(Identity.type, Identity.value, Identity.customer_id).where(Identity.corp_id == corp_id)
    ):
        groups.setdefault(customer_id, set()).add((type_, value))
    roots = set(
        db.session.scalars(select(Customer.id).where(Customer.corp_id == corp_id, Customer.merged_into_id.is_(None)))
    )
    assert set(groups) <= roots
    conflicts = sorted(
        (c.kind, len(c.customer_ids))
        for c in db.session.scalars(select(IdentityConflict).where(IdentityConflict.corp_id == corp_id))
    )
    return {frozenset(g) for g in groups.values()}, conflicts


def _seed(corp):
    factories.customer(corp, identities=[(EXT, "e1")])
    factories.customer(corp, identities=[(MP, "m5")])
    factories.customer(corp, identities=[(EXT, "e5")])


def test_bulk_link_matches_linking_one_by_one(db, corp):
    """Does a bulk import give the same customers, identities and conflicts as linking each link alone?"""
    other = Corp(wecom_corp_id="ww_bulk_reference", name="reference")
    db.session.add(other)
    db.session.commit()
    _seed(corp)
    _seed(other)
    report = oneid.bulk_link(corp.id, LINKS, "import")
    for link in LINKS:
        oneid.link(other.id, link, "import")
    assert _state(db, corp.id) == _state(db, other.id)
    assert report.links == len(LINKS)
    assert report.customers_created == 2  # the u2 person and o6; the rest went one by one
    assert report.identities_created == 4
    assert report.already_known == 1
    assert report.resolved_singly == len(LINKS) - 4


def test_bulk_link_is_idempotent(db, corp):
    """Does importing the same links twice change nothing the second time?"""
    oneid.bulk_link(corp.id, LINKS, "import")
    first = _state(db, corp.id)
    customers = db.session.query(Customer).count()
    report = oneid.bulk_link(corp.id, LINKS, "import")
    assert _state(db, corp.id) == first and db.session.query(Customer).count() == customers
    assert report.customers_created == 0 and report.identities_created == 0
