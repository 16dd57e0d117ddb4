"""Clean stops of the real processes: what `make run` starts (honcho with the Procfile), stopped
by SIGTERM and by Ctrl-C, and the worker alone stopped the way a container runtime stops it.

A clean stop is: each process exits 0 by itself, honcho never escalates to SIGKILL (it does after
5 s), nothing prints a traceback, and no process of any Procfile entry is left behind."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port

pytestmark = pytest.mark.processes

BIN = Path(sys.executable).parent
PROCFILE_ENTRIES = ("web", "worker", "dispatcher", "fakeprovider")
# A line each process prints once it is up; only then are its signal handlers in place.
READY_MARKERS = {
    "web": "Booting worker",
    "worker": "] running.",
    "dispatcher": "dispatch.started",
    "fakeprovider": "Fake provider server on",
}
STOP_SECONDS = 5


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("clean-stop")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "SWITCHYARD_VAR_DIR": str(workdir),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120
    )
    return env


def _wait_for(path: Path, markers, process: subprocess.Popen, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text(errors="replace")
        if all(marker in output for marker in markers):
            return output
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"not all of {markers} appeared:\n{path.read_text(errors='replace')}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_groups(*pgids: int) -> None:
    for pgid in pgids:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda honcho: honcho.send_signal(signal.SIGTERM), id="sigterm"),
        # The terminal's Ctrl-C: SIGINT to the foreground process group, honcho's.
        pytest.param(lambda honcho: os.killpg(honcho.pid, signal.SIGINT), id="ctrl-c"),
    ],
)
def test_make_run_processes_stop_cleanly(env, tmp_path, send):
    log_path = tmp_path / "honcho.log"
    honcho_env = {
        **env,
        "SWITCHYARD_BIND": f"127.0.0.1:{free_port()}",
        "FAKEPROVIDER_PORT": str(free_port()),
    }
    with log_path.open("w") as log:
        honcho = subprocess.Popen(
            [str(BIN / "honcho"), "--procfile", str(ROOT / "Procfile"), "start", *PROCFILE_ENTRIES],
            cwd=ROOT,
            env=honcho_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pgids = []
    try:
        output = _wait_for(log_path, READY_MARKERS.values(), honcho)
        # honcho starts each entry in a session of its own, led by the pid it prints.
        pgids = [int(pid) for pid in re.findall(r"\.1 started \(pid=(\d+)\)", output)]
        assert len(pgids) == len(PROCFILE_ENTRIES), output

        send(honcho)
        started = time.monotonic()
        honcho.wait(timeout=STOP_SECONDS + 10)
        elapsed = time.monotonic() - started
        output = log_path.read_text(errors="replace")

        assert "sending SIGKILL" not in output, output
        assert "Traceback" not in output, output
        for name in PROCFILE_ENTRIES:
            assert f"{name}.1 stopped (rc=0)" in output, output
        assert elapsed < STOP_SECONDS, output
        assert [pgid for pgid in pgids if _group_alive(pgid)] == [], output
    finally:
        if honcho.poll() is None:
            os.killpg(honcho.pid, signal.SIGKILL)
            honcho.wait(timeout=5)
        _kill_groups(*pgids)


def _start_worker(env, tmp_path) -> tuple[subprocess.Popen, Path]:
    """``manage.py worker`` in a session of its own, once it is ready; and its log."""
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(log_path, [READY_MARKERS["worker"]], worker)
    except BaseException:
        _kill_groups(worker.pid)
        raise
    return worker, log_path


def test_worker_stops_on_sigterm_to_its_main_process_alone(env, tmp_path):
    """As `docker stop` and Kubernetes do: only the main process gets the signal, and it stops
    the cluster's processes itself."""
    worker, log_path = _start_worker(env, tmp_path)
    try:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=STOP_SECONDS + 10)
        output = log_path.read_text(errors="replace")
        assert worker.returncode == 0, output
        assert "Traceback" not in output, output
        assert "worker.stopped" in output
        assert not _group_alive(worker.pid), output
    finally:
        _kill_groups(worker.pid)


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid``, from /proc (the parent is the 2nd field after the name)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_worker_exits_non_zero_when_its_sentinel_dies(env, tmp_path):
    """So a process manager restarts it, instead of a worker that runs no tasks."""
    worker, log_path = _start_worker(env, tmp_path)
    try:
        [sentinel] = _children(worker.pid)
        os.kill(sentinel, signal.SIGKILL)
        worker.wait(timeout=STOP_SECONDS + 10)
        output = log_path.read_text(errors="replace")
        assert worker.returncode == 1, output
        assert "the cluster's sentinel exited with code -9" in output
    finally:
        _kill_groups(worker.pid)  # the dead sentinel's workers, orphaned
