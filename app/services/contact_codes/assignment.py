"""routed mode: the landing link picks the rep, atomically, by the code's strategy.

The pick is one Redis Lua script per scan: it reads each candidate's counts for today and in
total, drops those at a cap, chooses by strategy, increments the chosen rep's counters and
appends the decision (with why) to a log, all in one atomic step. So however many scans arrive
at once, no cap is overshot and weighted round-robin is exact (2:1:1 over 400 scans is
200/100/100): the script picks the rep whose ``(picks today + 1) / weight`` is smallest, ties to
the earlier pool member. Counts are per day in the code's timezone, so the split holds exactly
every day and daily caps reset at its midnight.

A scan costs two Redis round trips (the snapshot's version, the script) and no database
round trip, which is what lets one code take thousands of scans a second. The decision log is
moved into ``ContactCodeAssignment`` rows in bulk by ``flush_decisions`` — scheduled a second
after the first unflushed decision, run by the periodic tick, and before every read of the
records — idempotently (each decision carries its own id). If Redis loses the counters (a
restart without persistence), the first pick of the day rebuilds them from those rows, never
lowering a count Redis still has.

What counts against a routed cap is an assignment (a landing answered with that rep): only that
can be decided atomically at scan time. A visitor coming back within a day gets the same rep
again (a signed visitor token) without using up another slot.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.errors import ApiError, NotFound
from app.extensions import db, get_redis
from app.models import (
    AssignmentKind,
    CodeMode,
    CodeStatus,
    CodeStrategy,
    ContactCode,
    ContactCodeAssignment,
    ContactCodeMember,
    FollowRelation,
    FollowStatus,
    utcnow,
)
from jobs.queues import queues

from . import cache, schedule
from .availability import exclusion

DAY_TTL = 3 * 86400
STICKY_SECONDS = 86400
_random = secrets.SystemRandom()
# The landing works on snapshots; tests and tools may pass the rows themselves.
AnyCode = ContactCode | cache.CodeView
AnyMember = ContactCodeMember | cache.MemberView

# KEYS: day hash, total hash, seeded flag, decision log, flush-due flag, decision sequence.
# ARGV: strategy, random [0,1), ttl, n, the decision's base record (JSON), then per candidate:
# staff id, tier (0 pool, 1 backup), weight, daily cap, total cap (-1 = none), load.
# → {decision id, staff id (0 = nobody), tier, picks today, picks in total, flush now (0/1)};
#   {-1} when the counters must be seeded first.
PICK = """
if redis.call('EXISTS', KEYS[3]) == 0 then return {-1} end
local strategy, r, ttl, n, base = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local chosen = {0, -1, 0, 0, 0, -1, -1, 0}
for tier = 0, 1 do
  local ids, ws, ds, ts, ls, dcs, tcs = {}, {}, {}, {}, {}, {}, {}
  for i = 0, n - 1 do
    local b = 6 + i * 6
    if tonumber(ARGV[b + 1]) == tier then
      local id = ARGV[b]
      local dcap, tcap = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
      local d = tonumber(redis.call('HGET', KEYS[1], id) or '0')
      local t = tonumber(redis.call('HGET', KEYS[2], id) or '0')
      if (dcap < 0 or d < dcap) and (tcap < 0 or t < tcap) then
        local k = #ids + 1
        ids[k], ws[k], ds[k], ts[k] = id, tonumber(ARGV[b + 2]), d, t
        ls[k], dcs[k], tcs[k] = tonumber(ARGV[b + 5]), dcap, tcap
      end
    end
  end
  if #ids > 0 then
    local best = 1
    if strategy == 'weighted_round_robin' then
      for j = 2, #ids do
        if (ds[j] + 1) * ws[best] < (ds[best] + 1) * ws[j] then best = j end
      end
    elseif strategy == 'least_loaded' then
      for j = 2, #ids do
        if ls[j] + ds[j] < ls[best] + ds[best] then best = j end
      end
    else
      local sum = 0
      for j = 1, #ids do sum = sum + ws[j] end
      local x, acc = r * sum, 0
      for j = 1, #ids do
        acc = acc + ws[j]
        if x < acc then best = j break end
      end
    end
    redis.call('HINCRBY', KEYS[1], ids[best], 1)
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('HINCRBY', KEYS[2], ids[best], 1)
    chosen = {tonumber(ids[best]), tier, ds[best] + 1, ts[best] + 1, ws[best], dcs[best], tcs[best], ls[best]}
    break
  end
end
local seq = redis.call('INCR', KEYS[6])
redis.call('RPUSH', KEYS[4], base .. '\t' .. seq .. ',' .. table.concat(chosen, ','))
local flush = 0
if redis.call('SET', KEYS[5], 1, 'NX', 'EX', 60) then flush = 1 end
return {seq, chosen[1], chosen[2], chosen[3], chosen[4], flush}
"""

# KEYS: day hash, total hash, seeded flag. ARGV: ttl, then per rep: staff id, today, total.
# Raises counters to the database's figures, never lowers them (Redis may be ahead of rows
# still being written).
SEED = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
for i = 2, #ARGV, 3 do
  local id, d, t = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if d > tonumber(redis.call('HGET', KEYS[1], id) or '0') then redis.call('HSET', KEYS[1], id, d) end
  if t > tonumber(redis.call('HGET', KEYS[2], id) or '0') then redis.call('HSET', KEYS[2], id, t) end
end
redis.call('SET', KEYS[3], 1, 'EX', ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""


@dataclass
class Landing:
    """What a landing answers. Plain values: the pick commits, and the ORM rows expire then."""

    code_id: int
    name: str
    channel: str
    state: str
    mode: str
    config_id: str | None
    qr_code: str | None
    rep_userid: str | None = None  # None in wecom mode: WeCom picks among its list
    rep_name: str | None = None
    visitor_token: str | None = None
    reused: bool = False
    assignment_id: int | None = None


@dataclass
class Pick:
    """One recorded decision."""

    id: int
    staff_id: int | None  # None: nobody could take the customer
    backup: bool
    reason: dict


LOG_KEY = "contact_code:decisions"
FLUSH_DUE_KEY = "contact_code:decisions:flush_due"
SEQUENCE_KEY = "contact_code:decisions:seq"
FLUSH_LOCK = "contact_code:decisions:flushing"
FLUSH_BATCH = 1000
FLUSH_DELAY = timedelta(seconds=1)


def _keys(code_id: int, day: date) -> list[str]:
    prefix = f"contact_code:{code_id}"
    return [f"{prefix}:day:{day.isoformat()}", f"{prefix}:total", f"{prefix}:seeded:{day.isoformat()}"]


def _scripts():
    scripts = current_app.extensions.get("contact_code_scripts")
    if scripts is None:
        redis = get_redis()
        scripts = current_app.extensions["contact_code_scripts"] = (
            redis.register_script(PICK),
            redis.register_script(SEED),
        )
    return scripts


def _seed(code: AnyCode, day: date, keys: list[str]) -> None:
    base = select(ContactCodeAssignment.staff_id, func.count()).where(
        ContactCodeAssignment.code_id == code.id,
        ContactCodeAssignment.kind == AssignmentKind.routed,
        ContactCodeAssignment.staff_id.is_not(None),
    )
    today = dict(
        db.session.execute(base.where(ContactCodeAssignment.day == day).group_by(ContactCodeAssignment.staff_id)).all()
    )
    total = dict(db.session.execute(base.group_by(ContactCodeAssignment.staff_id)).all())
    args: list = [DAY_TTL]
    for staff_id in total:
        args += [staff_id, today.get(staff_id, 0), total[staff_id]]
    _scripts()[1](keys=keys, args=args)


def _loads(code: AnyCode, staff_ids: list[int]) -> dict[int, int]:
    """Live customers per rep (least-loaded adds today's picks from this code to it)."""
    if code.strategy != CodeStrategy.least_loaded or not staff_ids:
        return {}
    return dict(
        db.session.execute(
            select(FollowRelation.staff_id, func.count())
            .where(FollowRelation.staff_id.in_(staff_ids), FollowRelation.status == FollowStatus.active)
            .group_by(FollowRelation.staff_id)
        ).all()
    )


def _reason(
    base: dict, staff_id: int, today: int, total: int, weight: int, daily_cap: int, total_cap: int, load: int
) -> dict:
    reason = dict(base["why"])
    if staff_id:
        reason.update(
            weight=weight,
            picks_today=today,
            daily_cap=None if daily_cap < 0 else daily_cap,
            picks_total=total,
            total_cap=None if total_cap < 0 else total_cap,
        )
        if reason["strategy"] == CodeStrategy.least_loaded:
            reason["load"] = load
    else:
        reason["nobody"] = "every pool member and backup is unavailable or at a cap"
    return reason


def pick(code: AnyCode, now: datetime) -> Pick:
    """Choose the rep for one scan; the decision is logged in the same atomic step."""
    day = schedule.local_day(code.schedule, now)
    excluded = {m.staff.userid: why for m in code.members if (why := exclusion(code, m, now))}
    candidates = [m for m in code.members if m.staff.userid not in excluded]
    loads = _loads(code, [m.staff_id for m in candidates])
    why: dict = {"strategy": str(code.strategy), "schedule_open": schedule.is_open(code.schedule, now)}
    if excluded:
        why["excluded"] = excluded
    base = {"corp_id": code.corp_id, "code_id": code.id, "day": day.isoformat(), "at": now.isoformat(), "why": why}
    args: list = [str(code.strategy), _random.random(), DAY_TTL, len(candidates), json.dumps(base, ensure_ascii=False)]
    for m in candidates:
        args += [m.staff_id, int(m.backup), m.weight, _cap(m.daily_cap), _cap(m.total_cap), loads.get(m.staff_id, 0)]
    keys = [*_keys(code.id, day), LOG_KEY, FLUSH_DUE_KEY, SEQUENCE_KEY]
    script = _scripts()[0]
    result = script(keys=keys, args=args)
    if result[0] == -1:
        _seed(code, day, keys[:3])
        result = script(keys=keys, args=args)
    decision_id, staff_id, tier, today, total, flush_now = result
    if flush_now:
        queues()["default"].enqueue_in(FLUSH_DELAY, flush_decisions_job)
    chosen = next((m for m in candidates if m.staff_id == staff_id), None)
    if chosen is None:
        return Pick(decision_id, None, False, _reason(base, 0, 0, 0, 0, -1, -1, 0))
    reason = _reason(
        base,
        staff_id,
        today,
        total,
        chosen.weight,
        _cap(chosen.daily_cap),
        _cap(chosen.total_cap),
        loads.get(staff_id, 0),
    )
    return Pick(decision_id, staff_id, tier == 1, reason)


def _row(entry: bytes) -> dict:
    head, _, tail = entry.decode().partition("\t")
    base = json.loads(head)
    decision_id, staff_id, tier, today, total, weight, daily_cap, total_cap, load = (int(x) for x in tail.split(","))
    return {
        "decision_id": decision_id,
        "corp_id": base["corp_id"],
        "code_id": base["code_id"],
        "staff_id": staff_id or None,
        "kind": AssignmentKind.routed,
        "backup": tier == 1,
        "reason": _reason(base, staff_id, today, total, weight, daily_cap, total_cap, load),
        "day": date.fromisoformat(base["day"]),
        "created_at": datetime.fromisoformat(base["at"]),
    }


def flush_decisions() -> int:
    """Move the decision log into ``ContactCodeAssignment`` rows, in batches; returns how many.
    One flusher at a time; a batch is trimmed from the log only after its rows committed, and
    rows already written are skipped, so a crash midway repeats nothing and loses nothing."""
    redis = get_redis()
    redis.delete(FLUSH_DUE_KEY)  # decisions logged from now on schedule the next flush
    lock = redis.lock(FLUSH_LOCK, timeout=120)
    if not lock.acquire(blocking=False):
        return 0
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(ContactCodeAssignment).on_conflict_do_nothing(index_elements=["decision_id"])
    moved = 0
    try:
        while entries := redis.lrange(LOG_KEY, 0, FLUSH_BATCH - 1):
            db.session.execute(stmt, [_row(e) for e in entries])
            db.session.commit()
            redis.ltrim(LOG_KEY, len(entries), -1)
            moved += len(entries)
    finally:
        lock.release()
    return moved


def flush_decisions_job() -> int:
    """RQ entry point (scheduled by the first unflushed decision, and by the tick)."""
    return flush_decisions()


def _cap(value: int | None) -> int:
    return -1 if value is None else value


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="contact-code-visitor")


def _sticky(code: AnyCode, token: str | None, now: datetime) -> AnyMember | None:
    """The rep a returning visitor was given, if the token is ours, fresh, for this code, and
    that rep can still take customers (schedule and caps aside: they were already assigned)."""
    if not token:
        return None
    try:
        data = _serializer().loads(token, max_age=STICKY_SECONDS)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("c") != code.id:
        return None
    member = next((m for m in code.members if m.staff_id == data.get("s")), None)
    if member is None or not member.config_id or exclusion(code, member, now) not in (None, "outside schedule"):
        return None
    return member


def land(corp_id: int, state: str, visitor_token: str | None = None, now: datetime | None = None) -> Landing:
    """What the landing link answers for ``state``: the contact way the visitor should add.

    404 unknown code, 410 archived or expired, 503 nobody available right now."""
    now = now or utcnow()
    code = cache.by_state(corp_id, state)
    if code is None:
        raise NotFound("contact code")
    if code.status == CodeStatus.archived or (code.expires_at is not None and code.expires_at <= now):
        raise ApiError(410, "gone", "this contact code no longer works")
    answer = Landing(code.id, code.name, code.channel, code.state, str(code.mode), code.config_id, code.qr_code)
    if code.mode == CodeMode.wecom:
        return answer
    member = _sticky(code, visitor_token, now)
    if member is not None:
        return _with_rep(answer, member, visitor_token, reused=True)
    decision = pick(code, now)
    if decision.staff_id is None:
        raise ApiError(503, "no_rep_available", "nobody can take new customers through this code right now")
    member = next(m for m in code.members if m.staff_id == decision.staff_id)
    if not member.config_id:
        raise ApiError(503, "no_contact_way", "this rep's contact way is missing; the admin must save the code again")
    token = _serializer().dumps({"c": code.id, "s": decision.staff_id, "a": decision.id})
    answer = _with_rep(answer, member, token, reused=False)
    answer.assignment_id = decision.id
    return answer


def _with_rep(answer: Landing, member: AnyMember, token: str | None, reused: bool) -> Landing:
    answer.rep_userid, answer.rep_name = member.staff.userid, member.staff.name
    answer.config_id, answer.qr_code = member.config_id, member.qr_code
    answer.visitor_token, answer.reused = token, reused
    return answer
