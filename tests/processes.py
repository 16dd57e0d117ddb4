"""Real Switchyard processes (web, worker, dispatcher) for end-to-end tests.

Each process's output goes to a file so a failing test can show it, and every process is stopped
with SIGTERM (then SIGKILL) when the stack closes."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]

__all__ = ("ROOT", "ProcessStack", "free_port")


# Below the kernel's ephemeral range (32768 up on Linux), so no outgoing connection of a process
# still starting can take the port between this check and the server's bind.
_LISTEN_PORTS = range(20000, 32000)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never the same one twice in a test run."""
    for port in random.sample(_LISTEN_PORTS, 200):
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {_LISTEN_PORTS}")


class ProcessStack:
    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir = workdir
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
        self.processes: dict[str, tuple[subprocess.Popen, Path]] = {}

    @classmethod
    def _on(cls, workdir: Path, database_url: str, redis_url: str, env: dict) -> "ProcessStack":
        base = {
            "DEBUG": "true",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SWITCHYARD_VAR_DIR": str(workdir),
        }
        return cls(workdir, {**base, **env})

    @classmethod
    def sqlite(cls, workdir: Path, **env: str) -> "ProcessStack":
        """A stack on the embedded default: its own SQLite file and the ORM broker."""
        return cls._on(workdir, f"sqlite:///{workdir / 'switchyard.sqlite3'}", "", env)

    @classmethod
    def on_test_database(cls, workdir: Path, **env: str) -> "ProcessStack":
        """A stack sharing the running test's database and broker (SQLite file and ORM broker,
        or PostgreSQL and Redis), so a test prepares rows the processes then work on."""
        from django.conf import settings
        from django.db import connection

        db = settings.DATABASES["default"]
        if connection.vendor == "sqlite":
            database_url = f"sqlite:///{db['NAME']}"
        else:
            host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
            auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
            database_url = f"postgres://{auth}@{host}:{port}/{db['NAME']}"
        return cls._on(workdir, database_url, os.environ.get("REDIS_URL", ""), env)

    def start_platform(self) -> None:
        """Web (one gunicorn worker; its URL in ``web_url``), a worker cluster, the dispatcher."""
        self.web_url = self.start_web(free_port(), workers=1)
        self.start_worker()
        self.start_dispatcher()

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log_path = self.workdir / f"{name}.log"
        log = log_path.open("w")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = (process, log_path)
        return process

    def start_web(self, port: int, workers: int = 2) -> str:
        bind = f"127.0.0.1:{port}"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.start("web", [str(gunicorn), "config.wsgi", "--bind", bind, "--workers", str(workers)])
        url = f"http://{bind}"
        self.wait_for(lambda: requests.get(f"{url}/healthz", timeout=1).ok, what="web /healthz")
        return url

    def start_worker(self, name: str = "worker") -> subprocess.Popen:
        return self.start(name, [sys.executable, "manage.py", "worker"])

    def start_dispatcher(self, *extra: str) -> subprocess.Popen:
        return self.start("dispatcher", [sys.executable, "manage.py", "dispatch", *extra])

    def wait_for(self, predicate, *, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.1)
        raise TimeoutError(f"timed out waiting for {what}\n{self.logs()}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process, _ = self.processes[name]
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"----- {name} -----\n{path.read_text(errors='replace')[-5000:]}"
            for name, (_, path) in self.processes.items()
        )

    def output(self, name: str) -> str:
        return self.processes[name][1].read_text(errors="replace")

    def stop(self) -> None:
        for process, _ in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process, _ in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
