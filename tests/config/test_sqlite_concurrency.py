"""The embedded default under load: web, worker and dispatcher all writing to one SQLite file."""

import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest
import requests

from tests.processes import ProcessStack, free_port

pytestmark = pytest.mark.processes

LOAD_SECONDS = 20


@pytest.fixture
def stack(tmp_path):
    # Heartbeats every 0.1 s make the dispatcher and the worker write as often as the web does.
    stack = ProcessStack.sqlite(
        tmp_path, SWITCHYARD_HEARTBEAT_SECONDS="0.1", SWITCHYARD_WORKERS="2"
    )
    stack.manage("migrate", "-v0")
    stack.manage("seed_demo", "--key-file", str(tmp_path / "key"))
    yield stack
    stack.stop()


def test_three_processes_write_concurrently_without_lock_errors(stack, tmp_path):
    raw_key = (tmp_path / "key").read_text()
    url = stack.start_web(free_port())
    stack.start_worker()
    stack.start_dispatcher("--interval", "0.05")
    headers = {"Authorization": f"Bearer {raw_key}"}
    statuses: list[int] = []
    deadline = time.monotonic() + LOAD_SECONDS

    def write_customers(thread_no: int) -> None:
        with requests.Session() as session:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                slug = f"load-{thread_no}-{n}"
                created = session.post(
                    f"{url}/api/v1/customers/",
                    json={"slug": slug, "name": slug, "region": "eu"},
                    headers=headers,
                    timeout=30,
                )
                updated = session.patch(
                    f"{url}/api/v1/customers/{slug}/",
                    json={"tier": "premium"},
                    headers=headers,
                    timeout=30,
                )
                statuses.extend([created.status_code, updated.status_code])

    threads = [threading.Thread(target=write_customers, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load_ended = datetime.now(UTC)
    stack.stop()

    logs = stack.logs()
    assert "database is locked" not in logs, logs
    assert len(statuses) > 100, f"too little web load to prove anything: {len(statuses)} requests"
    assert set(statuses) == {200, 201}, {s: statuses.count(s) for s in set(statuses)}
    with sqlite3.connect(tmp_path / "switchyard.sqlite3") as db:
        customers = db.execute("SELECT count(*) FROM customers_customer").fetchone()[0]
        roles = {r for (r,) in db.execute("SELECT role FROM integrations_processheartbeat")}
        [(worker_seen,)] = db.execute(
            "SELECT max(seen_at) FROM integrations_processheartbeat WHERE role = 'worker'"
        )
    assert customers == 2 + len(statuses) // 2
    assert roles == {"worker", "dispatcher"}
    # The worker ran probe tasks (each a write of its own) until the load ended, not just once
    # at the start: successful tasks are not saved, so its heartbeat is the witness.
    seen = datetime.fromisoformat(worker_seen).replace(tzinfo=UTC)
    assert (load_ended - seen).total_seconds() < 2, (load_ended, seen)
