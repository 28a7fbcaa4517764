"""Shared benchmark plumbing: a scratch PostgreSQL schema, Redis db, free ports, and the
project's real processes (gunicorn, workers, the simulator) started and stopped cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_schema(name: str) -> str:
    """Drop and create schema ``name`` with every table; returns a DATABASE_URL using it."""
    sys.path.insert(0, str(ROOT))
    from app.models import Base

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
        conn.execute(text(f'SET search_path TO "{name}"'))
        Base.metadata.create_all(conn)
    engine.dispose()
    return f"{PG_URL}?options=-csearch_path%3D{name}"


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


class Processes:
    """Start subprocesses in the project root; stop them all (process groups) on exit."""

    def __init__(self, env: dict[str, str]):
        self.env = {**os.environ, **env}
        self.procs: list[subprocess.Popen] = []

    def start(self, *args: str, log: str | None = None) -> subprocess.Popen:
        out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - lives as long as the process
        # The benchmark's own fixed commands (python -m …, gunicorn), never outside input.
        proc = subprocess.Popen(list(args), cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def processes(env: dict[str, str]):
    procs = Processes(env)
    try:
        yield procs
    finally:
        procs.stop()


def _stats() -> dict[int, tuple[int, str, float]]:
    """pid → (parent pid, command name, CPU seconds used so far) for every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return out


DATABASE_SERVERS = ("postgres", "redis-server")


def cpu_snapshot(roots: dict[str, list[int]], own: str) -> dict:
    """CPU seconds used so far, per process, by each group of process trees (a name → its root
    pids; children such as gunicorn's workers count with their root), by this process alone
    under the name ``own`` (its children are the groups'), and by every process of each of the
    :data:`DATABASE_SERVERS`, by command name. :func:`cpu_used` takes two."""
    stats = _stats()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> list[int]:
        return [pid] + [p for c in children.get(pid, []) for p in tree(c)] if pid in stats else []

    out = {group: {p: stats[p][2] for pid in pids for p in tree(pid)} for group, pids in roots.items()}
    out[own] = {os.getpid(): sum(os.times()[:2])}
    for name in DATABASE_SERVERS:
        out[name] = {pid: cpu for pid, (_, n, cpu) in stats.items() if n == name}
    return out


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (a process that started in between
    counts whole; one that ended in between is lost, so short-lived processes undercount)."""
    return {group: sum(cpu - before.get(group, {}).get(pid, 0.0) for pid, cpu in pids.items())
            for group, pids in after.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] if ordered else float("nan")
