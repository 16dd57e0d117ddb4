import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from integrations.dispatcher import Dispatcher, PeriodicStep
from integrations.models import ProcessHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def test_steps_run_on_their_own_period_and_failures_do_not_stop_others(db):
    calls = []

    def boom():
        calls.append("boom")
        raise RuntimeError("step failed")

    dispatcher = Dispatcher(
        [PeriodicStep("boom", 0, boom), PeriodicStep("slow", 3600, lambda: calls.append("slow"))],
        interval_seconds=0,
    )
    dispatcher.run_due_steps()
    dispatcher.run_due_steps()
    assert calls == ["boom", "slow", "boom"]


def test_dispatch_once_probes_workers(db):
    from django.core.management import call_command

    call_command("dispatch", "--once")
    # Test settings run django-q2 tasks inline, so the worker probe has already run.
    assert set(ProcessHeartbeat.objects.values_list("role", flat=True)) == {"dispatcher", "worker"}


@pytest.mark.processes
def test_dispatch_stops_cleanly_on_sigterm(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SWITCHYARD_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "dispatch", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # SIGTERM only once the handlers are installed (they are just before "dispatch.started"):
    # on a loaded machine start-up alone can take longer than any fixed pause.
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        lines.append(process.stdout.readline())
        if "dispatch.started" in lines[-1]:
            break
    time.sleep(0.3)  # a few passes of the loop
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=10)
    output = "".join(lines) + output
    assert process.returncode == 0, output
    assert "dispatch.started" in output
    assert "dispatch.stopped" in output
