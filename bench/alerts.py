"""Behaviour alert latency: ``python bench/alerts.py [--rate 200] [--seconds 8]``.

From the customer's event to the rep's WeCom message: logged-in visitors open reps' cards with
``POST /mp/v1/events`` (the mini-program's own endpoint, one card_view per request, open loop
at ``--rate`` requests a second), and the clock stops when the WeCom simulator receives the
``message/send`` that tells the rep ("X opened your card"). Every event is a new (customer,
rep) pair, so each one raises an alert; ``--reps`` is large enough that no rep passes the
default pacing (3 messages in 10 s), which would turn alerts into digests on purpose.

Runs on its own PostgreSQL schema (``bench_alerts``) and Redis db 0: the simulator, the app
under gunicorn (2 workers x 4 threads) and two RQ workers, as subprocesses. The baseline, in
the same run, is the card pipeline alone: the same requests' time to their event row in
PostgreSQL (the drainer's commit, after which alerts are evaluated). Target (issue 8): p50 <
300 ms and p99 < 1 s at 200 events/s with two workers. Logs: instance/bench/alerts.*.log.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path

import redis
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, fresh_schema, percentile, processes, wait_http  # noqa: E402

SCHEMA = "bench_alerts"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
GUNICORN = ["-w", "2", "-k", "gthread", "--threads", "4", "--keep-alive", "30", "--log-level", "warning"]
WARMUP_SECONDS = 2.0


def bench_app():
    """The real app, with the mini-program's per-address and per-token limits raised: every
    bench client is 127.0.0.1 and a visitor opens many cards a minute here."""
    from app import create_app
    from config import Config

    config = Config.from_env()
    config.EXTRA = {"MP_RATE_PER_IP": 10**9, "MP_RATE_PER_TOKEN": 10**6}
    return create_app(config)


def _post(conn: http.client.HTTPConnection, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, (json.loads(data) if data else {})


def seed(database_url: str, sim_port: int, reps: int) -> list[int]:
    """``reps`` reps, in WeCom (the simulator) and in our database, each with a card; returns
    the card ids (card i belongs to rep ``benchrep<i>``)."""
    from app import create_app
    from app.extensions import db
    from app.models import Card, ContactWayStatus, Staff
    from app.services import corps
    from config import Config

    sim = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=10)
    for n in range(reps):
        status, answer = _post(sim, "/sim/users", {"userid": f"benchrep{n}", "name": f"Rep {n}", "department": [1]})
        assert status == 200, answer
    app = create_app(Config.from_env({"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}))
    with app.app_context():
        corp = corps.env_corp()
        staff = [Staff(corp_id=corp.id, userid=f"benchrep{n}", name=f"Rep {n}") for n in range(reps)]
        db.session.add_all(staff)
        db.session.flush()
        cards = [
            Card(corp_id=corp.id, staff_id=s.id, display_name=s.name, contact_way_status=ContactWayStatus.ready)
            for s in staff
        ]
        db.session.add_all(cards)
        db.session.commit()
        ids = [c.id for c in cards]
        db.engine.dispose()
    return ids


def login(app_port: int, sim_port: int, visitors: int) -> list[str]:
    """``visitors`` WeChat users logged into the mini-program (wx.login codes from the simulator)."""
    sim = http.client.HTTPConnection("127.0.0.1", sim_port, timeout=10)
    app = http.client.HTTPConnection("127.0.0.1", app_port, timeout=10)
    tokens = []
    for n in range(visitors):
        _, code = _post(sim, "/sim/codes/jscode", {"unionid": f"bench-alert-union-{n}", "name": f"bv{n}"})
        status, answer = _post(app, "/mp/v1/session", {"code": code["code"]})
        assert status == 201, answer
        tokens.append(answer["token"])
    return tokens


class Load:
    """Open loop: event i is sent at start + i / rate from one of ``threads`` keep-alive
    connections; its latency counts from that scheduled (wall-clock) time."""

    def __init__(self, port: int, plan: list[tuple[str, str, int]], rate: float, threads: int = 16):
        self.port, self.plan, self.rate, self.threads = port, plan, rate, threads
        self.scheduled: dict[str, float] = {}
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()

    def run(self) -> None:
        start = time.time() + 0.3

        def work(worker: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            for i in range(worker, len(self.plan), self.threads):
                event_id, token, card_id = self.plan[i]
                at = start + i / self.rate
                pause = at - time.time()
                if pause > 0:
                    time.sleep(pause)
                body = {"events": [{"id": event_id, "type": "card_view", "ts": int(at * 1000), "card_id": card_id}]}
                try:
                    status, _ = _post(conn, "/mp/v1/events", body, token)
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    status = 599
                with self.lock:
                    self.scheduled[event_id] = at
                    self.statuses[status] = self.statuses.get(status, 0) + 1

        pool = [threading.Thread(target=work, args=(w,)) for w in range(self.threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()


class Messages:
    """Polls the simulator's message log (it keeps the last 500) and remembers when each
    message/send arrived: {msgid + userid: (sim time, status)}."""

    def __init__(self, sim_port: int, rate: float):
        self.sim_port = sim_port
        # Often enough that no message leaves the 500-message window unseen, rarely enough that
        # serializing the log (under the simulator's lock) does not slow message/send down.
        self.interval = min(1.0, 200 / rate)
        self.seen: dict[str, tuple[float, str]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.sim_port, timeout=10)
        while not self.stop.is_set():
            self.poll(conn)
            self.stop.wait(self.interval)

    def poll(self, conn: http.client.HTTPConnection) -> None:
        conn.request("GET", "/sim/state?sections=messages")
        state = json.loads(conn.getresponse().read())["messages"]
        for m in state["log"]:
            self.seen.setdefault(m["msgid"] + m["userid"], (m["at"], m["status"]))
        self.summary = {k: state[k] for k in ("delivered", "dropped", "duplicate")}


def cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of a process group."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def results(database_url: str) -> tuple[list, list]:
    """[(customer id, card id, rep userid, msgid of the message that carried it, state)] of the
    run's alert deliveries and [(client event id, stored at)] of its card events."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        alerts = conn.execute(
            text(
                "SELECT a.customer_id, c.card_id, d.userid, lead.msgid, d.state, "
                "extract(epoch FROM a.created_at)::float8 AS raised_at FROM alert a "
                "JOIN alert_delivery d ON d.alert_id = a.id "
                "LEFT JOIN alert_delivery lead ON lead.id = d.batch_id "
                "JOIN LATERAL (SELECT (a.data->>'card_id')::int AS card_id) c ON true"
            )
        ).all()
        stored = conn.execute(
            text("SELECT client_event_id, extract(epoch FROM created_at)::float8 FROM card_event")
        ).all()
    engine.dispose()
    return alerts, stored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events a second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--reps", type=int, default=800)
    parser.add_argument("--visitors", type=int, default=300)
    args = parser.parse_args()

    redis.Redis.from_url(REDIS_URL).flushdb()
    database_url = fresh_schema(SCHEMA)
    sim_port, app_port = free_port(), free_port()
    logs = ROOT / "instance" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "WECOM_API_BASE": f"http://127.0.0.1:{sim_port}/cgi-bin/",
        "WECHAT_API_BASE": f"http://127.0.0.1:{sim_port}/",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "INSTANCE_PATH": str(logs),
    }
    py = sys.executable
    with processes(env) as procs:
        groups = {
            "simulator": procs.start(
                py,
                "-m",
                "wecom.simulator",
                "--port",
                str(sim_port),
                "--callback-url",
                "",
                log=str(logs / "alerts.simulator.log"),
            ).pid,
            "app (gunicorn)": procs.start(
                py,
                "-m",
                "gunicorn",
                *GUNICORN,
                "-b",
                f"127.0.0.1:{app_port}",
                "bench.alerts:bench_app()",
                log=str(logs / "alerts.app.log"),
            ).pid,
        }
        wait_http(f"http://127.0.0.1:{sim_port}/sim/health")
        wait_http(f"http://127.0.0.1:{app_port}/healthz")
        # Seeded before the workers start: their periodic directory sync would race the seeding.
        cards = seed(database_url, sim_port, args.reps)
        for n in (1, 2):
            groups[f"worker {n}"] = procs.start(py, "-m", "jobs.worker", log=str(logs / f"alerts.worker{n}.log")).pid
        tokens = login(app_port, sim_port, args.visitors)
        # Every event a (visitor, card) pair never used before, so each raises one alert; cards
        # in turn, so a rep gets one every reps/rate seconds (2.5 per 10 s at the defaults).
        total = int(args.rate * (WARMUP_SECONDS + args.seconds))
        plan = [(f"ev{i}", tokens[(i // args.reps + i) % args.visitors], cards[i % args.reps]) for i in range(total)]
        assert len({(token, card) for _, token, card in plan}) == total, "raise --reps or --visitors"
        warm, measured = plan[: int(args.rate * WARMUP_SECONDS)], plan[int(args.rate * WARMUP_SECONDS) :]
        print(
            f"alerts: {len(measured)} card_view events at {args.rate:.0f}/s over {args.seconds:.0f} s (after a "
            f"{WARMUP_SECONDS:.0f} s warm-up), {args.reps} reps, {args.visitors} visitors, gunicorn 2x4, 2 RQ "
            f"workers; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} before the run",
            flush=True,
        )
        messages = Messages(sim_port, args.rate)
        messages.thread.start()
        Load(app_port, warm, args.rate).run()
        cpu_before = {name: cpu_seconds(pgid) for name, pgid in groups.items()}
        load = Load(app_port, measured, args.rate)
        load.run()
        sent_done = time.time()
        expected = len(warm) + len(measured)
        deadline = time.time() + 60
        while time.time() < deadline:
            alerts, stored = results(database_url)
            settled = [a for a in alerts if a.state != "pending" and a.state != "sending"]
            if len(settled) >= expected and all(
                (a.msgid or "") + a.userid in messages.seen for a in settled if a.state == "sent"
            ):
                break
            time.sleep(0.5)
        messages.stop.set()
        messages.thread.join()
        drained_after = time.time() - sent_done
        cpu = {name: cpu_seconds(pgid) - cpu_before[name] for name, pgid in groups.items()}

    # Which event raised which alert: the event's visitor and card.
    token_customer = _customers(database_url, tokens)
    event_of = {(token_customer[token], card_id): event_id for event_id, token, card_id in measured}
    alert_lat, raised_lat, states, digests = [], [], {}, 0
    for a in alerts:
        states[a.state] = states.get(a.state, 0) + 1
        event_id = event_of.get((a.customer_id, a.card_id))
        if event_id is None:
            continue
        raised_lat.append((a.raised_at - load.scheduled[event_id]) * 1000)
        seen = messages.seen.get((a.msgid or "") + a.userid)
        if seen is not None:
            alert_lat.append((seen[0] - load.scheduled[event_id]) * 1000)
    digests = sum(1 for a in alerts if a.msgid and sum(1 for b in alerts if b.msgid == a.msgid) > 1)
    stored_lat = [(at - load.scheduled[eid]) * 1000 for eid, at in stored if eid in load.scheduled]
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    engine.dispose()
    redis.Redis.from_url(REDIS_URL).flushdb()

    def row(name, values):
        return (
            f"| {name} | {len(values)} | {percentile(values, 50):.0f} ms | {percentile(values, 95):.0f} ms | "
            f"{percentile(values, 99):.0f} ms | {max(values, default=float('nan')):.0f} ms |"
        )

    print()
    print(
        f"requests: {load.statuses}; alert deliveries: {states}; simulator: {messages.summary}; "
        f"alerts carried in digests: {digests}; all settled {drained_after:.1f} s after the load stopped"
    )
    print()
    print("| from the event's request to … | n | p50 | p95 | p99 | max |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(row("the event stored (baseline: card pipeline alone)", stored_lat))
    print(row("the alert raised (rules evaluated in a worker)", raised_lat))
    print(row("the simulator receiving message/send (alert)", alert_lat))
    p50, p99 = percentile(alert_lat, 50), percentile(alert_lat, 99)
    print()
    print(
        "CPU used during the measured phase (ms per event): "
        + ", ".join(f"{name} {seconds * 1000 / len(measured):.1f}" for name, seconds in cpu.items())
        + f"; total {sum(cpu.values()) * 1000 / len(measured):.1f} (PostgreSQL and Redis not counted)"
    )
    print(
        f"ratios: alert/baseline p50 {p50 / percentile(stored_lat, 50):.1f}x, "
        f"p99 {p99 / percentile(stored_lat, 99):.1f}x"
    )
    met = p50 < 300 and p99 < 1000 and len(alert_lat) == len(measured)
    print(f"target p50 < 300 ms and p99 < 1 s at {args.rate:.0f}/s, every event alerted: {'MET' if met else 'NOT MET'}")
    return 0


def _customers(database_url: str, tokens: list[str]) -> dict[str, int]:
    """{session token: customer id} (sessions store only the token's SHA-256)."""
    import hashlib

    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT token_hash, customer_id FROM mp_session")).all())
    engine.dispose()
    return {t: rows[hashlib.sha256(t.encode()).hexdigest()] for t in tokens}


if __name__ == "__main__":
    sys.exit(main())
