"""Several workers linking overlapping identities at the same moment, on real PostgreSQL: they
end in one customer, never two, and never deadlock."""

import itertools
import logging
import threading

from sqlalchemy import select

from app.models import Customer, Identity, IdentityType
from app.services import customers, oneid
from tests import factories

EXT, UNION, MP, OA = IdentityType.external_userid, IdentityType.unionid, IdentityType.mp_openid, IdentityType.oa_openid
ROUNDS = 4
_round = itertools.count()


def _race(app, corp_id, links):
    """Run ``oneid.link`` for every link at once, one thread (and database session) each."""
    barrier = threading.Barrier(len(links))
    errors, results = [], [None] * len(links)

    def work(n, identities):
        with app.app_context():
            barrier.wait()
            try:
                results[n] = oneid.link(corp_id, identities, "race")
            except Exception as exc:  # reported below: the test must see every failure
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, link)) for n, link in enumerate(links)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def _one_customer(db, corp, identities):
    """The single surviving customer that every identity resolves to."""
    db.session.rollback()
    owners = {oneid.customer_id_for(corp.id, t, v) for t, v in identities}
    assert len(owners) == 1 and None not in owners, owners
    (owner,) = owners
    assert db.session.get(Customer, owner).merged_into_id is None
    held = db.session.execute(select(Identity.type, Identity.value).where(Identity.customer_id == owner)).all()
    assert set(identities) <= {(IdentityType(t), v) for t, v in held}
    return owner


def _no_deadlocks(caplog):
    retried = [r.getMessage() for r in caplog.records if "retried after" in r.getMessage()]
    assert not [m for m in retried if "Deadlock" in m], retried


def test_same_new_person_from_many_workers_is_created_once(app, db, corp, caplog):
    """When eight workers link the same new unionid at once, is exactly one customer created?"""
    caplog.set_level(logging.INFO, logger="app.services.oneid")
    for _ in range(ROUNDS):
        r = next(_round)
        links = [[(UNION, f"u{r}"), (MP if n % 2 else OA, f"id{r}-{n}")] for n in range(7)]
        links.append([(EXT, f"e{r}"), (UNION, f"u{r}")])
        before = db.session.query(Customer).count()
        results = _race(app, corp.id, links)
        owner = _one_customer(db, corp, [i for link in links for i in link])
        assert set(results) == {owner}
        assert db.session.query(Customer).count() == before + 1
    _no_deadlocks(caplog)


def test_a_chain_of_overlapping_links_ends_in_one_customer(app, db, corp, caplog):
    """When workers link a chain (a-b, b-c, c-d, ...) at once, do all the identities end on one customer?"""
    caplog.set_level(logging.INFO, logger="app.services.oneid")
    types = [EXT, MP, OA, IdentityType.pending_id]
    for _ in range(ROUNDS):
        r = next(_round)
        chain = [(types[n % 4], f"c{r}-{n}") for n in range(9)]
        links = [[chain[n], chain[n + 1]] for n in range(8)]
        _race(app, corp.id, links)
        owner = _one_customer(db, corp, chain)
        # Every customer created on the way was merged into the survivor, none left apart.
        created = db.session.scalars(select(Customer.id).where(Customer.id >= owner)).all()
        assert {customers.resolve_id(corp.id, c) for c in created} == {owner}
    _no_deadlocks(caplog)


def test_merges_race_with_attaches_without_deadlock(app, db, corp, caplog):
    """While one worker merges two customers, do others attaching to either (and the mini-program
    login of the same person) finish without deadlock and all land on the survivor?"""
    caplog.set_level(logging.INFO, logger="app.services.oneid")
    for _ in range(ROUNDS):
        r = next(_round)
        a = factories.customer(corp, identities=[(EXT, f"ea{r}"), (OA, f"oa{r}")])
        factories.customer(corp, identities=[(UNION, f"ub{r}"), (MP, f"mb{r}")])
        links = [
            [(EXT, f"ea{r}"), (UNION, f"ub{r}")],  # the WeCom contact carries B's unionid: merge
            [(MP, f"mb{r}"), (UNION, f"ub{r}")],  # B logs into the mini-program again
            [(UNION, f"ub{r}"), (IdentityType.pending_id, f"p{r}")],  # idconvert answers for B
            [(OA, f"oa{r}"), (EXT, f"ea2-{r}")],  # A reached through another path
            [(MP, f"mb{r}"), (OA, f"oa{r}")],  # a second strong link between the same two
            [(EXT, f"ea{r}"), (MP, f"mb{r}")],
        ]
        _race(app, corp.id, links)
        assert _one_customer(db, corp, [i for link in links for i in link]) == a.id
    _no_deadlocks(caplog)
