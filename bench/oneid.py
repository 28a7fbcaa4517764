"""OneID at scale: ``python bench/oneid.py``.

1. Bulk resolution of 1,000,000 synthetic identity links (400k people: WeCom contact +
   unionid, mini-program openid + unionid, official-account openid + unionid, shuffled) with
   ``oneid.bulk_link`` (COPY + set-based SQL) on PostgreSQL; baseline: the naive path, one
   ``oneid.link`` (resolve + commit) per link, on a 1,000-link sample, extrapolated. Besides
   wall time it reports CPU time (this process, and the app's PostgreSQL backends read from
   /proc), which other work on the machine inflates much less.
2. Single resolve latency on the resulting 1.4M-identity table: ``resolve_or_create`` of known
   links (the callback and login path), p50/p99; baseline: a bare ``SELECT 1`` round trip.
3. An update import (5,000 links, 10% touching existing customers: 5% attaches, 5% merges).

Self-contained: schema ``bench_oneid`` on postgresql+psycopg://postgres@127.0.0.1:5432/test
(``BENCH_DATABASE_URL``), Redis db 13 (``BENCH_REDIS_URL``); both are cleaned up at the end.
Figures are noisy when other work shares the machine.
"""

from __future__ import annotations

import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SCHEMA = "bench_oneid"
PEOPLE = 400_000
SAMPLE = 1_000
RESOLVES = 3_000
UPDATE_LINKS = 5_000
APP_NAME = "oneid-bench"  # marks the app's database sessions, to read their CPU time


def _schema(engine, create: bool) -> None:
    from app.models import Base

    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        if create:
            conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
            conn.execute(text(f'SET search_path TO "{SCHEMA}"'))
            Base.metadata.create_all(conn)


def synthetic_links(people: int, seed: int = 6) -> list[list[tuple]]:
    """~2.5 links per person: (external_userid, unionid) for all, (mp_openid, unionid) for
    75%, (oa_openid, unionid) for 75%, in random order. One person in a hundred logged into the
    mini-program before a unionid was available: their openid is a customer of its own."""
    from app.models import IdentityType as T

    rng = random.Random(seed)
    links = []
    for i in range(people):
        union = (T.unionid, f"oBench{i:010d}unionid")
        links.append([(T.external_userid, f"wmBench{i:010d}external"), union])
        if i % 4:
            mp = (T.mp_openid, f"oMp{i:010d}miniprogram")
            links.append([mp] if i % 100 == 3 else [mp, union])
        if (i + 2) % 4:
            links.append([(T.oa_openid, f"oOa{i:010d}officialacct"), union])
    rng.shuffle(links)
    return links


def cpu_seconds(engine) -> tuple[float, float]:
    """(this process, the app's PostgreSQL backends) CPU seconds so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    with engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"), {"n": APP_NAME})
        server = 0.0
        for (pid,) in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # another host, or the backend is gone
                continue
            server += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return me.ru_utime + me.ru_stime, server


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    from app import create_app
    from app.extensions import db
    from app.models import IdentityType as T
    from app.services import corps, oneid
    from config import Config

    engine = create_engine(PG_URL)
    _schema(engine, create=True)
    redis.Redis.from_url(REDIS_URL).flushdb()
    app = create_app(
        Config(
            DATABASE_URL=f"{PG_URL}?application_name={APP_NAME}&options=-csearch_path%3D{SCHEMA}",
            REDIS_URL=REDIS_URL,
            LOG_LEVEL="WARNING",
        )
    )
    ok = True
    try:
        with app.app_context():
            corp_id = corps.env_corp_id()
            started = time.perf_counter()
            links = synthetic_links(PEOPLE)
            print(f"generated {len(links):,} links for {PEOPLE:,} people in {time.perf_counter() - started:.1f}s")

            # -- 1. bulk --------------------------------------------------------------------
            db.session.execute(text("SELECT 1"))  # open the app's connection before counting its CPU
            db.session.commit()
            cpu_before = cpu_seconds(engine)
            started = time.perf_counter()
            report = oneid.bulk_link(corp_id, links, "bench")
            bulk_s = time.perf_counter() - started
            cpu_after = cpu_seconds(engine)
            client_cpu, server_cpu = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
            identities = db.session.scalar(text("SELECT count(*) FROM identity"))
            customers = db.session.scalar(text("SELECT count(*) FROM customer"))
            print(
                f"bulk_link: {len(links):,} links in {bulk_s:.1f}s ({len(links) / bulk_s:,.0f} links/s) → "
                f"{customers:,} customers, {identities:,} identities; phases {report.seconds}; CPU: this process"
                f" {client_cpu:.1f}s + PostgreSQL {server_cpu:.1f}s"
            )
            ok &= bulk_s < 60 and customers == PEOPLE + PEOPLE // 100

            # Baseline: the naive path, one resolve + commit per link, on fresh people.
            sample = synthetic_links(SAMPLE // 2, seed=7)[:SAMPLE]
            sample = [[(t, "naive-" + v) for t, v in link] for link in sample]
            started = time.perf_counter()
            for link in sample:
                oneid.link(corp_id, link, "bench")
            naive_s = time.perf_counter() - started
            naive_rate = len(sample) / naive_s
            print(
                f"baseline (one link at a time): {len(sample):,} links in {naive_s:.1f}s ({naive_rate:,.0f} links/s)"
                f" → 1M links would take {1_000_000 / naive_rate:,.0f}s;"
                f" bulk is {len(links) / bulk_s / naive_rate:.0f}x faster"
            )

            # -- 2. single resolve ------------------------------------------------------------
            rng = random.Random(8)
            picks = [links[rng.randrange(len(links))] for _ in range(RESOLVES)]
            for link in picks[:200]:  # warm the pool and caches
                oneid.resolve_or_create(corp_id, link, "bench")
                db.session.commit()
            resolve_ms, txn_ms, select_ms = [], [], []
            for link in picks:
                t0 = time.perf_counter()
                oneid.resolve_or_create(corp_id, link, "bench")
                t1 = time.perf_counter()
                db.session.commit()
                t2 = time.perf_counter()
                resolve_ms.append((t1 - t0) * 1000)
                txn_ms.append((t2 - t0) * 1000)
            for _ in range(RESOLVES):
                t0 = time.perf_counter()
                db.session.execute(text("SELECT 1")).scalar()
                db.session.commit()
                select_ms.append((time.perf_counter() - t0) * 1000)
            p99, base99 = percentile(resolve_ms, 99), percentile(select_ms, 99)
            print(
                f"resolve_or_create of a known link on {identities:,} identities ({RESOLVES:,} calls): "
                f"p50 {statistics.median(resolve_ms):.2f} ms, p99 {p99:.2f} ms; with commit p99 "
                f"{percentile(txn_ms, 99):.2f} ms; baseline SELECT 1 + commit p50"
                f" {statistics.median(select_ms):.2f} ms, p99 {base99:.2f} ms → p99 ratio {p99 / base99:.1f}x"
            )
            ok &= p99 < 5

            # -- 3. an update import ----------------------------------------------------------
            update = []
            for i in range(UPDATE_LINKS):
                if i % 20 == 0:  # an existing person gets a new official-account openid
                    update.append([(T.unionid, f"oBench{i:010d}unionid"), (T.oa_openid, f"oOaNew{i:010d}")])
                elif i % 20 == 1:  # the unionid-less login turns out to be a WeCom contact (a merge)
                    n = i // 20 * 100 + 3
                    update.append(
                        [(T.external_userid, f"wmBench{n:010d}external"), (T.mp_openid, f"oMp{n:010d}miniprogram")]
                    )
                else:
                    update.append([(T.external_userid, f"wmUpd{i:010d}"), (T.unionid, f"oUpd{i:010d}")])
            started = time.perf_counter()
            report = oneid.bulk_link(corp_id, update, "bench")
            update_s = time.perf_counter() - started
            merges = db.session.scalar(text("SELECT count(*) FROM merge_record"))
            print(
                f"update import: {len(update):,} links in {update_s:.1f}s: {report.customers_created:,} new people "
                f"set-based, {report.resolved_singly:,} links resolved one by one, {merges:,} merges"
            )
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        _schema(engine, create=False)
        engine.dispose()
        redis.Redis.from_url(REDIS_URL).flushdb()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"targets: bulk < 60 s, single resolve p99 < 5 ms: {'met' if ok else 'NOT met'}"
        f" (load average {load} on {os.cpu_count()} CPUs)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
