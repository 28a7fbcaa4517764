"""Contact codes benchmark: `python bench/contact_codes.py [--seconds 10] [--rate 50]`.

Everything real: PostgreSQL (schema bench_contact_codes), Redis (db 12), the WeCom simulator,
the app under gunicorn (2 workers, gthread × 8) and `--workers` (default 2) `python -m jobs.worker`.
  1. scan → welcome sent at a fixed 50 adds/s (open loop, latency from the scheduled scan time to
     the outbox row's sent_at); baseline: the same scans on a plain contact way (no code), scan →
     event processed — the pipeline floor the welcome rides on.
  2. routed assignment decisions per second: `assignment.land()` (the code's snapshot, the atomic
     Lua pick that also logs the decision) in 2 processes × 6 threads on one hot code; baseline:
     the same lookup plus one INSERT + COMMIT per decision (the floor of any design that writes a
     row per scan before answering). The 2:1:1 split is checked on the rows written out.
  3. the landing link over HTTP (`GET /c/<state>?format=json`), 16 clients; baseline: /healthz.
Targets (issue 5): welcome p99 < 2 s at 50 adds/s; ≥ 1,000 routed decisions/s.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import ROOT, free_port, fresh_schema, percentile, processes, wait_http  # noqa: E402
from wecom.simulator import SimulatorControl  # noqa: E402
from wecom.simulator import defaults as sim_defaults  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/12"
GUNICORN = ["-w", "2", "-k", "gthread", "--threads", "8", "--log-level", "warning"]
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway user in a throwaway schema


def open_loop_scans(control: SimulatorControl, config_id: str, rate: float, seconds: float) -> dict[str, float]:
    """Scan at ``rate``/s; {external_userid: scheduled wall time}."""
    n = int(rate * seconds)
    scheduled: dict[str, float] = {}
    lock = threading.Lock()
    t0 = time.time() + 0.2
    threads = 16

    def run(k: int):
        ctl = SimulatorControl(control.base_url)
        for i in range(k, n, threads):
            at = t0 + i / rate
            pause = at - time.time()
            if pause > 0:
                time.sleep(pause)
            scan = ctl.scan(config_id=config_id)
            with lock:
                scheduled[scan["external_userid"]] = at

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return scheduled


def wait_for(engine, sql: str, target: int, timeout: float = 90.0, params: dict | None = None) -> int:
    """Poll ``sql`` (a count) until it reaches ``target`` or ``timeout``; returns the last value."""
    deadline = time.monotonic() + timeout
    value = 0
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            value = conn.execute(text(sql), params or {}).scalar()
        if value >= target:
            break
        time.sleep(0.2)
    return value


def _decide(database_url: str, code_id: int, seconds: float, threads: int, atomic: bool, out) -> None:
    """One process of phase 2: ``threads`` threads deciding for ``seconds``; puts the count on ``out``."""
    from sqlalchemy import insert

    from app import create_app
    from app.extensions import db
    from app.models import AssignmentKind, ContactCode, ContactCodeAssignment, utcnow
    from app.services import corps
    from app.services.contact_codes import assignment, cache
    from config import Config

    app = create_app(Config(DATABASE_URL=database_url, REDIS_URL=REDIS_URL, LOG_LEVEL="WARNING"))
    with app.app_context():
        corp_id = corps.env_corp_id()
        state = db.session.get(ContactCode, code_id).state
    done = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def run(_):
        n = 0
        with app.app_context():
            while time.monotonic() < stop_at:
                if atomic:
                    assignment.land(corp_id, state)
                else:
                    code = cache.by_state(corp_id, state)
                    now = utcnow()
                    db.session.execute(
                        insert(ContactCodeAssignment).values(
                            corp_id=corp_id,
                            code_id=code.id,
                            staff_id=code.members[0].staff_id,
                            kind=AssignmentKind.routed,
                            reason={"baseline": True},
                            day=now.date(),
                            created_at=now,
                        )
                    )
                    db.session.commit()
                n += 1
            db.session.remove()
        with lock:
            done[0] += n

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    out.put(done[0])


def decisions_per_second(database_url: str, code_id: int, seconds: float, atomic: bool) -> float:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_decide, args=(database_url, code_id, seconds, 6, atomic, out)) for _ in range(2)]
    for proc in procs:
        proc.start()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    for proc in procs:
        proc.join(timeout=30)
    return total / seconds


def closed_loop_get(url: str, seconds: float, clients: int = 16) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def run(_):
        session = requests.Session()
        mine = []
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            resp = session.get(url, timeout=10)
            assert resp.status_code == 200, resp.text
            mine.append((time.perf_counter() - started) * 1000)
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, range(clients)))
    return len(latencies) / (time.perf_counter() - began), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the 50 adds/s phase")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2, help="`python -m jobs.worker` processes")
    args = parser.parse_args()

    database_url = fresh_schema("bench_contact_codes")
    redis.Redis.from_url(REDIS_URL).flushdb()
    sim_port, app_port = free_port(), free_port()
    app_url, sim_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{sim_port}"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "WECOM_API_BASE": f"{sim_url}/cgi-bin/",
        "WECHAT_API_BASE": f"{sim_url}/",
        "INSTANCE_PATH": tempfile.mkdtemp(),
        "FLASK_APP": "wsgi",
    }
    py = sys.executable
    engine = create_engine(database_url)
    with processes(env) as procs:
        procs.start(
            py,
            "-m",
            "wecom.simulator",
            "--port",
            str(sim_port),
            "--seed-demo",
            "--callback-url",
            f"{app_url}/wecom/callback",
        )
        procs.start(py, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{app_port}", "wsgi:app")
        wait_http(f"{sim_url}/sim/health")
        wait_http(f"{app_url}/healthz")
        for command in (["create-admin", "bench", "--password", PASSWORD], ["wecom", "sync"]):
            subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
                [py, "-m", "flask", *command],
                cwd=ROOT,
                env=procs.env,
                check=True,
                capture_output=True,
            )
        # A fresh Redis would run every periodic job's current slot at once (the nightly full
        # sync among them): mark those slots done, as a long-running deployment has them.
        from jobs.schedules import definitions

        now = time.time()
        for job in definitions():
            redis.Redis.from_url(REDIS_URL).set(f"periodic:{job.name}:{job.slot(now)}", 1, ex=3600)
        for _ in range(args.workers):
            procs.start(py, "-m", "jobs.worker")
        token = requests.post(
            f"{app_url}/api/v1/auth/token", json={"username": "bench", "password": PASSWORD}, timeout=10
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        control = SimulatorControl(sim_url)
        reps = ["zhangwei", "lina", "wangfang", "liuyang"]

        print(f"phase 1: {args.rate:.0f} scans/s for {args.seconds:.0f} s, plain way then code …", flush=True)
        wecom_token = requests.get(
            f"{sim_url}/cgi-bin/gettoken",
            timeout=5,
            params={"corpid": sim_defaults.CORP_ID, "corpsecret": sim_defaults.CONTACT_SECRET},
        ).json()["access_token"]
        plain = requests.post(
            f"{sim_url}/cgi-bin/externalcontact/add_contact_way",
            timeout=5,
            params={"access_token": wecom_token},
            json={"type": 2, "scene": 2, "state": "bench-plain", "user": reps},
        ).json()["config_id"]
        code = requests.post(
            f"{app_url}/api/v1/contact-codes",
            headers=headers,
            timeout=30,
            json={
                "name": "Bench expo",
                "channel": "bench",
                "members": [{"userid": u} for u in reps],
                "welcome": {
                    "text": "您好 {customer_name}，我是{rep_name}",
                    "attachments": [{"type": "link", "title": "资料", "url": "https://example.com"}],
                },
                "tags": [{"name": "bench"}],
            },
        ).json()
        plain_at = open_loop_scans(control, plain, args.rate, args.seconds)
        wait_for(engine, "SELECT count(*) FROM callback_event WHERE status = 'done'", len(plain_at))
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT payload->>'ExternalUserID', processed_at FROM callback_event WHERE status = 'done'")
            ).all()
        plain_lat = [(at.timestamp() - plain_at[e]) * 1000 for e, at in rows if e in plain_at]

        code_at = open_loop_scans(control, code["config_id"], args.rate, args.seconds)
        settled = wait_for(engine, "SELECT count(*) FROM contact_code_welcome WHERE status <> 'pending'", len(code_at))
        wait_for(engine, "SELECT count(*) FROM contact_code_add WHERE tag_status <> 'pending'", len(code_at))
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT a.external_userid, w.status, w.sent_at FROM contact_code_welcome w "
                    "JOIN contact_code_add a ON a.id = w.add_id"
                )
            ).all()
            tagged = conn.execute(text("SELECT count(*) FROM contact_code_add WHERE tag_status = 'applied'")).scalar()
            # From the add's event being done to its welcome being sent: the wait for a worker.
            handoff = [
                r[0] * 1000
                for r in conn.execute(
                    text(
                        "SELECT extract(epoch FROM w.sent_at - e.processed_at) FROM contact_code_welcome w "
                        "JOIN contact_code_add a ON a.id = w.add_id "
                        "JOIN callback_event e ON e.payload->>'ExternalUserID' = a.external_userid "
                        "WHERE w.status = 'sent'"
                    )
                ).all()
            ]
        sent = [(r[2].timestamp() - code_at[r[0]]) * 1000 for r in rows if r[1] == "sent" and r[0] in code_at]
        statuses: dict[str, int] = {}
        for row in rows:
            statuses[row[1]] = statuses.get(row[1], 0) + 1
        sim_welcomes = len(control.state("welcomes")["welcomes"])

        print("phase 2: routed decisions, 2 processes × 6 threads, 5 s each …", flush=True)
        routed = requests.post(
            f"{app_url}/api/v1/contact-codes",
            headers=headers,
            timeout=30,
            json={
                "name": "Bench routed",
                "channel": "bench-routed",
                "mode": "routed",
                "members": [{"userid": "zhangwei", "weight": 2}, {"userid": "lina"}, {"userid": "wangfang"}],
            },
        ).json()
        base_rate = decisions_per_second(database_url, routed["id"], 5.0, atomic=False)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM contact_code_assignment WHERE code_id = :id"), {"id": routed["id"]})
        pick_rate = decisions_per_second(database_url, routed["id"], 5.0, atomic=True)
        # The workers write the decision log out within a second or two; the split is read from the rows.
        wait_for(
            engine,
            "SELECT count(*) FROM contact_code_assignment WHERE code_id = :id",
            int(pick_rate * 5.0) - 1,
            timeout=60,
            params={"id": routed["id"]},
        )
        with engine.connect() as conn:
            split = dict(
                conn.execute(
                    text(
                        "SELECT s.userid, count(*) FROM contact_code_assignment a JOIN staff s ON s.id = a.staff_id "
                        "WHERE a.code_id = :id GROUP BY s.userid"
                    ),
                    {"id": routed["id"]},
                ).all()
            )
        total = sum(split.values())
        exact = all(
            abs(split.get(u, 0) - total * w / 4) <= 1 for u, w in (("zhangwei", 2), ("lina", 1), ("wangfang", 1))
        )

        print("phase 3: the landing link over HTTP, 16 clients, 5 s each …", flush=True)
        health_rps, health_lat = closed_loop_get(f"{app_url}/healthz", 5.0)
        land_rps, land_lat = closed_loop_get(f"{app_url}/c/{routed['state']}?format=json", 5.0)
    engine.dispose()

    print()
    print(f"(run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {args.workers} workers)")
    print("| measure | contact codes | baseline | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| scan → welcome sent, p50 at {args.rate:.0f}/s | {percentile(sent, 50):.0f} ms | "
        f"{percentile(plain_lat, 50):.0f} ms (scan → event processed, plain way) | "
        f"{percentile(sent, 50) / percentile(plain_lat, 50):.2f}× | |"
    )
    print(
        f"| scan → welcome sent, p99 at {args.rate:.0f}/s | {percentile(sent, 99):.0f} ms | "
        f"{percentile(plain_lat, 99):.0f} ms | {percentile(sent, 99) / percentile(plain_lat, 99):.2f}× | < 2 s |"
    )
    print(
        f"| event processed → welcome sent (the wait for a worker), p50 / p99 | {percentile(handoff, 50):.0f} / "
        f"{percentile(handoff, 99):.0f} ms | | | |"
    )
    print(
        f"| welcomes | {len(sent)} sent of {len(code_at)} scans ({statuses}; {settled} settled; "
        f"simulator received {sim_welcomes}; {tagged} tagged) | | | all sent once |"
    )
    print(
        f"| routed decisions (land: lookup + atomic pick + record) | {pick_rate:.0f}/s | {base_rate:.0f}/s "
        f"(lookup + INSERT/COMMIT per decision) | {pick_rate / base_rate:.0%} | ≥ 1,000/s |"
    )
    print(f"| routed 2:1:1 split over {total} decisions | {split} | | exact ±1: {exact} | exact |")
    print(
        f"| landing GET /c/<state> (HTTP, 16 clients) | {land_rps:.0f}/s, p99 {percentile(land_lat, 99):.0f} ms "
        f"| {health_rps:.0f}/s, p99 {percentile(health_lat, 99):.0f} ms (/healthz) | {land_rps / health_rps:.0%} "
        f"| |"
    )


if __name__ == "__main__":
    main()
