"""Several replicas: two `tunesmith serve` processes behind one deployment, sharing one store on a
real PostgreSQL server (a throwaway cluster in a temporary folder, started with Debian's binaries).
A subject gets the same side from either replica, a promote reaches both, and the counts add up."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from .conftest import register_adapter

pytestmark = pytest.mark.slow  # two server processes and a database cluster: tens of seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def postgres_url():
    """A fresh cluster on a free loopback port, as the `postgres` user (initdb refuses root)."""
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed (pip install 'psycopg[binary]')")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL's server binaries are not installed (apt-get install postgresql; make test does it)")
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    # Outside pytest's temporary folders: those are private to root, and the server runs as postgres.
    cluster = Path(tempfile.mkdtemp(prefix="tunesmith-pg-"))
    if as_postgres:
        shutil.chown(cluster, "postgres")
    data, port = cluster / "data", _free_port()
    _run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "tunesmith"])
    _run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(cluster / "log"), "-w",
          "-o", f"-p {port} -k {cluster} -h 127.0.0.1", "start"])
    try:
        yield f"postgresql+psycopg://tunesmith@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(cluster, ignore_errors=True)


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")


def _serve(model_dir: Path, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "tunesmith", "serve", str(model_dir), "--port", str(port), "--device", "cpu",
               "--threads", "1"]
    return subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the server did not start: {log.read_text()[-2000:]}")


def _served_by(url: str, subject: str) -> str:
    reply = httpx.post(f"{url}/v1/chat/completions", headers={"X-Tunesmith-Subject": subject}, timeout=120,
                       json={"model": "bot", "max_tokens": 2, "temperature": 0,
                             "messages": [{"role": "user", "content": "hello"}]})
    assert reply.status_code == 200, reply.text
    return reply.headers["x-tunesmith-served-by"]


def test_two_replicas_on_postgresql_share_assignment_promotion_and_counts(postgres_url, tiny_model_dir, adapter_dir,
                                                                          tmp_path, monkeypatch):
    from tunesmith.rollout import create_deployment, promote, start_rollout
    from tunesmith.store.deployments import request_counts
    from tunesmith.store.queries import list_served_requests

    monkeypatch.setenv("TUNESMITH_DATABASE_URL", postgres_url)
    tuned = register_adapter(tiny_model_dir, adapter_dir, "tiny-tuned")
    create_deployment("bot", str(tiny_model_dir))
    start_rollout("bot", "tiny-tuned", "ab", 50)

    env = {**os.environ, "TUNESMITH_DATABASE_URL": postgres_url, "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    ports = [_free_port(), _free_port()]
    logs = [tmp_path / f"replica{i}.log" for i in range(2)]
    replicas = [_serve(tiny_model_dir, port, env, log) for port, log in zip(ports, logs)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process, log in zip(urls, replicas, logs):
            _wait_healthy(url, process, log)
        sent, sides = 0, {}
        for i in range(16):
            subject = f"user-{i}"
            first, second = _served_by(urls[0], subject), _served_by(urls[1], subject)
            sent += 2
            assert first == second, f"{subject} got {first} from one replica and {second} from the other"
            sides[subject] = first
        assert set(sides.values()) == {str(tiny_model_dir), tuned.id}  # 16 subjects at 50%: both sides seen
        promote("bot")
        deadline = time.monotonic() + 15  # each replica re-reads deployments every 2 s
        while True:
            after = {_served_by(url, "after-promote") for url in urls}
            sent += 2
            if after == {tuned.id}:
                break
            assert time.monotonic() < deadline, "the promotion did not reach both replicas"
            time.sleep(0.5)
    finally:
        for process in replicas:
            process.send_signal(signal.SIGINT)  # uvicorn's graceful stop: the request log is written out
        for process in replicas:
            process.wait(timeout=60)
    assert sum(request_counts("bot").values()) == sent  # both replicas' requests, in one log
    logged = [r for r in list_served_requests(model="bot") if r.subject in sides]
    assert len(logged) == 32
    for row in logged:  # the log agrees with the headers, whichever replica wrote the row
        assert row.model_id == sides[row.subject]
        assert row.route == ("candidate" if sides[row.subject] == tuned.id else "production")
