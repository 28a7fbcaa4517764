"""Callback intake benchmark: `python bench/callbacks.py [--seconds 10] [--events 1500]`.

Real encrypted callbacks over HTTP to the app under gunicorn (2 workers), and in the same run
to a bare Flask endpoint that only answers 200 under the same gunicorn settings (the baseline):
  1. ack latency at a fixed 300 requests/s (open loop; latency counted from the scheduled send
     time, so queueing is not hidden);
  2. ack throughput, closed loop, app vs bare;
  3. end to end: ack → customer stored, with two real workers that fetch each contact from the
     WeCom simulator, in events/s.
Targets (issue 4): p99 < 50 ms at 300/s; throughput ≥ 50% of bare; ≥ 200 events/s end to end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode, urlsplit

import redis
import requests
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import cpu_snapshot, cpu_used, free_port, fresh_schema, percentile, processes, wait_http  # noqa: E402
from wecom.crypto import CallbackCrypto  # noqa: E402
from wecom.simulator import SimulatorControl  # noqa: E402
from wecom.simulator import defaults as sim_defaults  # noqa: E402

GUNICORN = ["-w", "2", "-k", "gthread", "--threads", "8", "--log-level", "warning"]
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")


def add_event_xml(userid: str, external_userid: str, welcome_code: str, state: str = "bench") -> str:
    return (f"<xml><ToUserName><![CDATA[{sim_defaults.CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{int(time.time())}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
            "<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
            f"<UserID><![CDATA[{userid}]]></UserID><ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>"
            f"<State><![CDATA[{state}]]></State><WelcomeCode><![CDATA[{welcome_code}]]></WelcomeCode></xml>")


class Callback(NamedTuple):
    """One sealed callback, ready to send: the path with its signed query, and the XML body."""

    path: str
    body: bytes


def sealed(crypto: CallbackCrypto, xml: str) -> Callback:
    params, body = crypto.envelope(xml)
    return Callback("/wecom/callback?" + urlencode(params), body)


class Sender:
    """A keep-alive HTTP/1.1 connection posting callbacks, as WeCom's servers do. The load
    generator shares the box's two cores with what it measures, so it is plain http.client
    with everything encoded in advance (~0.2 ms of CPU a call; requests took ~1.6 ms)."""

    def __init__(self, base: str):
        url = urlsplit(base)
        self.host, self.port = url.hostname, url.port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, callback: Callback) -> int:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request("POST", callback.path, callback.body, {"Content-Type": "text/xml"})
                resp = self.conn.getresponse()
                resp.read()
                if resp.will_close:
                    self.conn.close()
                    self.conn = None
                return resp.status
            except (ConnectionError, http.client.HTTPException):
                # The server closed an idle keep-alive connection as we reused it: reconnect once.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def open_loop(base: str, callbacks: list[Callback], rate: float, threads: int = 32) -> list[float]:
    """Send request i at t0 + i/rate; latency = answer time - scheduled time (ms)."""
    latencies: list[float] = []
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.2

    def run(k: int):
        sender = Sender(base)
        for i in range(k, len(callbacks), threads):
            scheduled = t0 + i / rate
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            status = sender.post(callbacks[i])
            done = time.perf_counter()
            assert status == 200, status
            with lock:
                latencies.append((done - scheduled) * 1000)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return latencies


def closed_loop(base: str, callbacks: list[Callback], seconds: float, threads: int = 16) -> float:
    """As many requests as ``threads`` clients get answered in ``seconds``; returns req/s."""
    counter = iter(range(len(callbacks)))
    lock = threading.Lock()
    done = [0]
    stop_at = time.perf_counter() + seconds

    def run(_):
        sender = Sender(base)
        while time.perf_counter() < stop_at:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            assert sender.post(callbacks[i]) == 200
            with lock:
                done[0] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(run, range(threads)))
    return done[0] / (time.perf_counter() - started)


def wait_workers(conn: redis.Redis, n: int, timeout: float = 60.0) -> None:
    from rq import Worker

    deadline = time.monotonic() + timeout
    while len(Worker.all(connection=conn)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} workers did not start")
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the fixed-rate phase")
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--events", type=int, default=1500, help="events in the end-to-end phase")
    args = parser.parse_args()

    database_url = fresh_schema("bench_callbacks")
    redis.Redis.from_url(REDIS_URL).flushdb()
    sim_port, app_port, bare_port = free_port(), free_port(), free_port()
    env = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, "LOG_LEVEL": "WARNING",
           "WECOM_API_BASE": f"http://127.0.0.1:{sim_port}/cgi-bin/", "INSTANCE_PATH": tempfile.mkdtemp()}
    crypto = CallbackCrypto(sim_defaults.TOKEN, sim_defaults.ENCODING_AES_KEY, sim_defaults.CORP_ID)
    py = sys.executable
    with processes(env) as procs:
        sim = procs.start(py, "-m", "wecom.simulator", "--port", str(sim_port), "--callback-url", "")
        app = procs.start(py, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{app_port}", "wsgi:app")
        procs.start(py, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{bare_port}", "bench.bare_app:app")
        for port in (sim_port, app_port, bare_port):
            wait_http(f"http://127.0.0.1:{port}/")
        app_url = f"http://127.0.0.1:{app_port}"
        bare_url = f"http://127.0.0.1:{bare_port}"

        n_fixed = int(args.rate * args.seconds)
        fresh = [sealed(crypto, add_event_xml("rep", f"wm-fixed-{i}", f"wc-{i}")) for i in range(n_fixed + 20500)]
        # Steady state, not start-up: connection pools, the corp row and imports warm up first.
        closed_loop(app_url, fresh[-500:-250], 2.0)
        closed_loop(bare_url, fresh[-250:], 2.0)
        print(f"phase 1: {n_fixed} callbacks at {args.rate:.0f}/s, app then bare …", flush=True)
        app_lat = open_loop(app_url, fresh[:n_fixed], args.rate)
        bare_lat = open_loop(bare_url, fresh[:n_fixed], args.rate)

        print("phase 2: closed-loop throughput, 5 s each …", flush=True)
        app_rps = closed_loop(app_url, fresh[n_fixed:n_fixed + 10000], 5.0)
        bare_rps = closed_loop(bare_url, fresh[n_fixed + 10000:-500], 5.0)

        print(f"phase 3: {args.events} real add_external_contact events end to end, 2 workers …", flush=True)
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text("TRUNCATE callback_event"))
        redis.Redis.from_url(REDIS_URL).flushdb()
        control = SimulatorControl(f"http://127.0.0.1:{sim_port}")
        users = control.seed_demo()["users"][:3]
        token = requests.get(f"http://127.0.0.1:{sim_port}/cgi-bin/gettoken", timeout=5, params={
            "corpid": sim_defaults.CORP_ID, "corpsecret": sim_defaults.CONTACT_SECRET}).json()["access_token"]
        way = requests.post(f"http://127.0.0.1:{sim_port}/cgi-bin/externalcontact/add_contact_way", timeout=5,
                            params={"access_token": token},
                            json={"type": 2, "scene": 2, "state": "bench", "user": users}).json()["config_id"]
        scans = [control.scan(config_id=way) for _ in range(args.events)]
        events = [sealed(crypto, add_event_xml(s["userid"], s["external_userid"], s.get("welcome_code") or "x"))
                  for s in scans]
        workers = [procs.start(py, "-m", "jobs.worker", "--queues", "high,default") for _ in range(2)]
        # Workers that are still importing would put their start-up (seconds of CPU on this
        # box) inside the measurement: wait until both are registered with RQ and listening.
        wait_workers(redis.Redis.from_url(REDIS_URL), 2)
        roles = {"workers": [w.pid for w in workers], "app (gunicorn)": [app.pid],
                 "simulator": [sim.pid]}
        cpu_before = cpu_snapshot(roles, own="benchmark clients")
        started = time.perf_counter()
        e2e_ack_rps = closed_loop(app_url, events, 120.0)
        acked = time.perf_counter()
        deadline = acked + 120
        done = 0
        with engine.connect() as conn:
            while time.perf_counter() < deadline:
                done = conn.execute(text("SELECT count(*) FROM callback_event WHERE status = 'done'")).scalar()
                if done >= args.events:
                    break
                time.sleep(0.05)
            customers = conn.execute(text("SELECT count(*) FROM customer")).scalar()
        finished = time.perf_counter()
        cpu = cpu_used(cpu_before, cpu_snapshot(roles, own="benchmark clients"))
        engine.dispose()
        paths = {k.decode(): int(v) for k, v in redis.Redis.from_url(REDIS_URL).hgetall("events:paths").items()}

    e2e_rate = done / (finished - started)
    print()
    print("| measure | app | bare endpoint | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| ack p50 at {args.rate:.0f}/s | {percentile(app_lat, 50):.1f} ms | {percentile(bare_lat, 50):.1f} ms "
          f"| {percentile(app_lat, 50) / percentile(bare_lat, 50):.2f}× | |")
    print(f"| ack p99 at {args.rate:.0f}/s | {percentile(app_lat, 99):.1f} ms | {percentile(bare_lat, 99):.1f} ms "
          f"| {percentile(app_lat, 99) / percentile(bare_lat, 99):.2f}× | < 50 ms |")
    print(f"| ack throughput (16 clients) | {app_rps:.0f}/s | {bare_rps:.0f}/s | {app_rps / bare_rps:.0%} | ≥ 50% |")
    print(f"| end to end, ack → customer stored | {e2e_rate:.0f} events/s ({done}/{args.events} done, "
          f"{customers} customers; acks at {e2e_ack_rps:.0f}/s) | | | ≥ 200/s |")
    batches, batched, singly = (paths.get(k, 0) for k in ("batches", "batched", "one_by_one"))
    print(f"\ndrained in {batches} batches of {(batched + singly) / max(batches, 1):.1f} events on average;"
          f" set-based {batched}, one by one {singly}")
    wall = finished - started
    shares = ", ".join(f"{role} {1000 * cpu_s / max(done, 1):.2f} ({cpu_s / wall:.0%} of a core)"
                       for role, cpu_s in cpu.items())
    print(f"CPU during the end-to-end phase ({wall:.1f} s on {os.cpu_count()} cores), ms per event: {shares}")


if __name__ == "__main__":
    main()
