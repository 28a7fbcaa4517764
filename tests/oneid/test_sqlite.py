"""OneID on SQLite (the dev default): no advisory locks there, plain transactions instead."""

import pytest
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import Base, Customer, IdentityType, MergeRecord
from app.services import corps, merge, oneid, timeline
from app.services.auth import Principal
from config import Config

EXT, UNION, MP = IdentityType.external_userid, IdentityType.unionid, IdentityType.mp_openid


@pytest.fixture
def sqlite_app(tmp_path, redis_url):
    app = create_app(Config(DATABASE_URL=f"sqlite:///{tmp_path}/oneid.db", REDIS_URL=redis_url, TESTING=True))
    with app.app_context():
        Base.metadata.create_all(db.engine)
        yield app
        db.session.remove()
        db.engine.dispose()


def test_link_merge_unmerge_and_timeline_work_on_sqlite(sqlite_app):
    """Do linking, automatic merge, phone linking, unmerge, bulk link and the timeline work on SQLite?"""
    corp_id = corps.env_corp().id
    a = oneid.link(corp_id, [(EXT, "e1")], "test")
    b = oneid.link(corp_id, [(MP, "m1"), (UNION, "u1")], "test")
    assert oneid.link(corp_id, [(EXT, "e1"), (UNION, "u1")], "test") == a
    assert db.session.get(Customer, b).merged_into_id == a
    oneid.link_phone(corp_id, a, "13800138000", verified=True, source="mp_phone")
    db.session.commit()
    record = db.session.scalars(select(MergeRecord)).one()
    merge.unmerge(corp_id, record.id, actor="test", reason="test")
    db.session.commit()
    assert oneid.customer_id_for(corp_id, MP, "m1") == b
    report = oneid.bulk_link(corp_id, [[(EXT, "e2"), (UNION, "u2")], [(MP, "m1"), (EXT, "e3")]], "import")
    assert report.links == 2 and oneid.customer_id_for(corp_id, EXT, "e3") == b
    admin = Principal(user_id=1, corp_id=corp_id, role="admin", staff_id=None)
    kinds = {e.kind for e in timeline.for_customer(admin, a, page=1, per_page=20).items}
    assert kinds == {"merged", "unmerged"}
