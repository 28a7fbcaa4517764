"""Card event ingestion: ``python bench/card_events.py``.

Starts the simulator, gunicorn (2 workers x 4 threads) and two RQ workers on a scratch PostgreSQL
schema (``bench_card_events``) and Redis db 14, logs 500 WeChat users into the mini-program
(plus 500 anonymous devices), then sends batches of 20 events (mostly heartbeats, some views,
reads, leaves, rare shares and clicks) at a fixed rate from 12 keep-alive connections: first to
a bare endpoint that only parses the JSON (the baseline: the same gunicorn, the same client),
then to ``POST /mp/v1/events``. Each gets a 3 s warm-up first. It prints the request latency
percentiles and rates of both, waits until the workers have stored every acknowledged event in
PostgreSQL and checks that none is missing, and says how long the drainer needed after the load
stopped. Logs: instance/bench/card_events.*.log (BENCH_LOG_LEVEL=INFO for the app's).

By default the workers run without other features' hooks on card signals (the alerts feature
evaluates every view and click in jobs of its own): the figures are the card write path's.
``--other-features`` keeps them, for the whole product's load on the same two cores.

    --rate EVENTS_PER_SECOND (default 3200)  --seconds N (default 30)  --workers N (gunicorn, 2)
    --other-features
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SCHEMA = "bench_card_events"
BATCH = 20
USERS, DEVICES = 500, 500
WARMUP = 3.0  # seconds
# What a page sends: mostly heartbeats (one every few seconds while visible), now and then a
# view, a content read, a leave; shares and clicks are rare.
KINDS = ["heartbeat", "content_view", "card_view", "leave", "share", "click_phone", "add_wecom"]
MIX = [85, 6, 5, 1.5, 1.5, 0.7, 0.3]


# -- the apps gunicorn serves ------------------------------------------------------------------
def bench_app():
    """The real app, with the per-address limit raised: every bench client is 127.0.0.1."""
    from app import create_app
    from config import Config

    config = Config.from_env()
    config.EXTRA = {"MP_RATE_PER_IP": 10**9, "MP_RATE_PER_TOKEN": 10**6}
    return create_app(config)


def signals_only_worker() -> None:
    """``python -m jobs.worker`` without other features' reactions to card signals (alerts
    evaluate every view and click): what the card write path itself sustains. Creating the app
    once registers their hooks; they are dropped before the worker's own app is made."""
    from app import create_app
    from app.services import signals
    from jobs.worker import main as worker_main

    create_app()
    signals.ACTIVITY_HOOKS.clear()
    signals.LEVEL_CHANGE_HOOKS.clear()
    worker_main([])


def baseline_app():
    """What no ingestion can beat on this stack: parse the JSON batch, answer 202."""
    from flask import Flask, jsonify, request

    app = Flask(__name__)

    @app.post("/mp/v1/events")
    def events():
        body = request.get_json(force=True)
        return jsonify(accepted=len(body["events"]), shares={}), 202

    return app


# -- plumbing --------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not answer {path}")


@contextmanager
def processes(env: dict):
    procs: list[subprocess.Popen] = []
    logs = ROOT / "instance" / "bench"
    logs.mkdir(parents=True, exist_ok=True)

    def start(name: str, *args: str) -> subprocess.Popen:
        out = open(logs / f"card_events.{name}.log", "w")  # the child holds it; closed when it ends
        proc = subprocess.Popen(  # noqa: S603 - our own fixed command lines
            args, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def fresh_schema() -> str:
    from sqlalchemy import create_engine, text

    from app.models import Base

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
        conn.execute(text(f'SET search_path TO "{SCHEMA}"'))
        Base.metadata.create_all(conn)
    engine.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{SCHEMA}"


def drop_schema() -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    engine.dispose()


def seed_cards(database_url: str) -> list[tuple[int, list[int]]]:
    """Ten reps with a card of five items each: [(card id, [content ids])]."""
    from app import create_app
    from app.extensions import db
    from app.models import Card, ContactWayStatus, ContentItem, Staff
    from app.services import corps
    from config import Config

    app = create_app(Config.from_env({"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}))
    cards = []
    with app.app_context():
        corp = corps.env_corp()
        for n in range(10):
            staff = Staff(corp_id=corp.id, userid=f"bench{n}", name=f"Bench {n}")
            db.session.add(staff)
            db.session.flush()
            card = Card(
                corp_id=corp.id,
                staff_id=staff.id,
                display_name=staff.name,
                contact_way_status=ContactWayStatus.ready,
                contact_way_state="",
            )
            db.session.add(card)
            db.session.flush()
            items = [
                ContentItem(
                    corp_id=corp.id,
                    card_id=card.id,
                    kind="article",
                    title=f"item {i}",
                    url=f"https://example.com/{n}/{i}",
                )
                for i in range(5)
            ]
            db.session.add_all(items)
            db.session.flush()
            cards.append((card.id, [i.id for i in items]))
        db.session.commit()
        db.engine.dispose()
    return cards


def post(conn: http.client.HTTPConnection, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, (json.loads(data) if data else {})


def sessions(app_port: int, sim_port: int) -> list[str]:
    """USERS logged-in users (wx.login codes minted by the simulator) and DEVICES anonymous ones."""
    sim = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=10)
    app = http.client.HTTPConnection("127.0.0.1", app_port, timeout=10)
    tokens = []
    for n in range(USERS):
        _, code = post(sim, "/sim/codes/jscode", {"unionid": f"bench-union-{n}", "name": f"访客{n}"})
        status, answer = post(app, "/mp/v1/session", {"code": code["code"]})
        assert status == 201, answer
        tokens.append(answer["token"])
    for _ in range(DEVICES):
        status, answer = post(app, "/mp/v1/device", {})
        assert status == 201, answer
        tokens.append(answer["token"])
    return tokens


class Load:
    """Open-loop load: ``rate`` batches a second spread over ``threads`` keep-alive connections,
    each request sent at its scheduled time (latency is measured from that time, so a stalled
    server cannot hide its queueing from the figures)."""

    def __init__(self, port: int, tokens: list[str], cards, rate: float, seconds: float, threads: int = 12):
        self.port, self.tokens, self.cards = port, tokens, cards
        self.rate, self.seconds, self.threads = rate, seconds, threads
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.accepted = 0
        self.lock = threading.Lock()
        self.run_id = f"{random.getrandbits(32):08x}"  # event ids never repeat across runs

    def batch(self, rng: random.Random, worker: int, n: int) -> dict:
        card_id, items = rng.choice(self.cards)
        base = int(time.time() * 1000) - BATCH * 1000
        events = []
        for i in range(BATCH):
            kind = rng.choices(KINDS, MIX)[0]
            event = {"id": f"{self.run_id}-{worker}-{n}-{i}", "type": kind, "ts": base + i * 1000, "card_id": card_id}
            if kind == "content_view" or (kind == "heartbeat" and rng.random() < 0.5):
                event["content_id"] = rng.choice(items)
            events.append(event)
        return {"events": events}

    def run(self) -> None:
        start = time.perf_counter() + 0.2
        per_thread = self.rate / self.threads

        def work(worker: int) -> None:
            rng = random.Random(worker)
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            n = 0
            while True:
                scheduled = start + (n + worker / self.threads) / per_thread
                if scheduled - start > self.seconds:
                    break
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                token = self.tokens[(worker * 7919 + n) % len(self.tokens)]
                body = self.batch(rng, worker, n)
                try:
                    status, answer = post(conn, "/mp/v1/events", body, token)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    status, answer = 599, {}
                took = time.perf_counter() - scheduled
                with self.lock:
                    self.latencies.append(took)
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if status == 202:
                        self.accepted += answer.get("accepted", 0)
                n += 1

        pool = [threading.Thread(target=work, args=(w,)) for w in range(self.threads)]
        began = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        self.elapsed = time.perf_counter() - began

    def report(self, name: str) -> dict:
        lat = sorted(self.latencies)

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q / 100 * len(lat)))] * 1000 if lat else float("nan")

        ok = self.statuses.get(202, 0)
        figures = {
            "requests": len(lat),
            "ok": ok,
            "events_per_s": ok * BATCH / self.elapsed,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": lat[-1] * 1000 if lat else float("nan"),
        }
        print(
            f"  {name:<9} {figures['requests']:>6} requests, {ok} accepted ({self.statuses}), "
            f"{figures['events_per_s']:,.0f} events/s; latency p50 {figures['p50_ms']:.1f} ms, "
            f"p95 {figures['p95_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms"
        )
        return figures


def stored_events(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM card_event")).scalar_one()
    engine.dispose()
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=3200, help="events a second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--other-features",
        action="store_true",
        help="keep other features' hooks on card signals (alerts) in the workers: the whole product's load",
    )
    args = parser.parse_args()

    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = fresh_schema()
    cards = seed_cards(database_url)
    app_port, base_port, sim_port = free_port(), free_port(), free_port()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "WECHAT_API_BASE": f"http://127.0.0.1:{sim_port}/",
        "WECOM_API_BASE": f"http://127.0.0.1:{sim_port}/cgi-bin/",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "INSTANCE_PATH": str(ROOT / "instance" / "bench"),
    }
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(args.workers),
        "-k",
        "gthread",
        "--threads",
        "4",
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    rate = args.rate / BATCH
    try:
        with processes(env) as start:
            start("simulator", sys.executable, "-m", "wecom.simulator", "--port", str(sim_port), "--callback-url", "")
            start("app", *gunicorn, "-b", f"127.0.0.1:{app_port}", "bench.card_events:bench_app()")
            start("baseline", *gunicorn, "-b", f"127.0.0.1:{base_port}", "bench.card_events:baseline_app()")
            # Two workers: the drainer and other features' jobs (alerts react to card activity) run side by side.
            worker = [sys.executable, "-m", "jobs.worker"]
            if not args.other_features:
                worker = [sys.executable, "-c", "from bench.card_events import signals_only_worker as w; w()"]
            start("worker1", *worker)
            start("worker2", *worker)
            wait_http(sim_port, "/sim/health")
            wait_http(app_port, "/healthz")
            wait_http(base_port, "/healthz")
            tokens = sessions(app_port, sim_port)
            print(
                f"card events: {args.rate:,.0f} events/s offered ({rate:.0f} batches of {BATCH}/s) for "
                f"{args.seconds:.0f} s, gunicorn {args.workers} workers x 4 threads, 2 RQ workers "
                f"({'with' if args.other_features else 'without'} other features' hooks), "
                f"{USERS} users + {DEVICES} devices on {len(cards)} cards; {os.cpu_count()} CPUs, load average "
                f"{os.getloadavg()[0]:.1f} before the run (other work on the machine skews the figures)"
            )
            # A short warm-up at the same rate (pools, caches, first compilations), not counted.
            Load(base_port, tokens, cards, rate, WARMUP).run()
            baseline = Load(base_port, tokens, cards, rate, min(args.seconds, 15))
            baseline.run()
            base = baseline.report("baseline")
            warmup = Load(app_port, tokens, cards, rate, WARMUP)
            warmup.run()
            load = Load(app_port, tokens, cards, rate, args.seconds)
            load.run()
            stopped = time.monotonic()
            ours = load.report("ingest")
            acked = load.accepted + warmup.accepted
            stored = stored_events(database_url)
            while stored < acked and time.monotonic() < stopped + 60:
                time.sleep(0.2)
                stored = stored_events(database_url)
            print(
                f"  stored    {stored:,} of {acked:,} acknowledged events in PostgreSQL "
                f"({'none lost' if stored == acked else 'MISSING ' + str(acked - stored)}); the drainer was done "
                f"{time.monotonic() - stopped:.1f} s after the load stopped"
            )
            print(
                f"  ratios    throughput {ours['events_per_s'] / base['events_per_s']:.2f} x baseline, "
                f"p99 {ours['p99_ms'] / base['p99_ms']:.1f} x baseline ({ours['p99_ms']:.1f} vs "
                f"{base['p99_ms']:.1f} ms)"
            )
            target = ours["events_per_s"] >= 3000 and ours["p99_ms"] < 100 and stored == acked
            print(f"  target    ≥ 3,000 events/s with p99 < 100 ms and nothing lost: {'MET' if target else 'NOT MET'}")
            return 0 if stored == acked else 1
    finally:
        drop_schema()
        redis.Redis.from_url(REDIS_URL).flushdb()


if __name__ == "__main__":
    sys.exit(main())
