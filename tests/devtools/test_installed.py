"""The development tools are an app of their own, installed with SWITCHYARD_DEV_TOOLS (default:
DEBUG): a production deployment has no fake provider server and no demo seeding."""

import os
import subprocess
import sys

import pytest

from tests.processes import ROOT

# Production-like: the variables under test are set by each case, none inherited.
PRODUCTION = {"DEBUG": "false", "SECRET_KEY": "k" * 50, "DJANGO_SETTINGS_MODULE": "config.settings"}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SWITCHYARD_DEV_TOOLS")}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **PRODUCTION, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _installed(**env: str) -> bool:
    probe = "from django.apps import apps; print(apps.is_installed('devtools'))"
    result = _manage("shell", "-c", probe, **env)
    assert result.returncode == 0, result.stderr
    # The last line: the shell first says how many objects it imported.
    return result.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize(
    ("env", "installed"),
    [
        ({}, False),  # production: DEBUG off
        ({"DEBUG": "true"}, True),  # development
        ({"SWITCHYARD_DEV_TOOLS": "false"}, False),
        ({"SWITCHYARD_DEV_TOOLS": "true"}, True),  # a production-like test or bench stack
        ({"DEBUG": "true", "SWITCHYARD_DEV_TOOLS": "false"}, False),
    ],
)
def test_installed_with_the_setting_which_follows_debug(env, installed):
    assert _installed(**env) is installed


@pytest.mark.parametrize("command", ["fakeprovider", "seed_demo", "welcome"])
def test_without_the_setting_the_commands_are_unknown(command):
    result = _manage(command, "--help", SWITCHYARD_DEV_TOOLS="false")
    assert result.returncode != 0
    assert f"Unknown command: '{command}'" in result.stderr


@pytest.mark.parametrize("command", ["fakeprovider", "seed_demo", "welcome"])
def test_with_the_setting_the_commands_exist(command):
    result = _manage(command, "--help", SWITCHYARD_DEV_TOOLS="true")
    assert result.returncode == 0, result.stderr
