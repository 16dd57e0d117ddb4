"""deploy/: the files parse; the alert rules and the dashboard name only metrics the code
exports; the compose services run the Procfile's commands. (No container engine runs here.)"""

import json
import re
import shlex

import pytest
import yaml

from config.metrics import registry as scraped
from config.metrics_recorded import recorded
from tests.processes import ROOT

pytestmark = pytest.mark.django_db

DEPLOY = ROOT / "deploy"
METRIC = re.compile(r"\bswitchyard_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> set[str]:
    """Every series name the registries expose: web's scrape-time gauges and the metrics the
    workers and the dispatcher record (a counter as ``_total``, a histogram's three series)."""
    names = set()
    for registry in (scraped, recorded):
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_the_alert_rules_parse_and_name_exported_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert all(rule.get("alert") for group in rules["groups"] for rule in group["rules"])
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert named and named <= exported(), named - exported()
    # The §11 contract metrics each have an alert.
    for name in (
        "switchyard_breaker_open",
        "switchyard_delivery_attempts_total",
        "switchyard_delivery_latency_seconds_bucket",
        "switchyard_delivery_attempt_duration_seconds_bucket",
        "switchyard_inbound_processing_latency_seconds_bucket",
    ):
        assert name in named


def test_the_dashboard_parses_and_names_exported_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "switchyard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    named = {name for expr in exprs for name in METRIC.findall(expr)}
    assert named and named <= exported(), named - exported()


def test_the_scrape_config_parses_and_loads_the_rules():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"switchyard-web", "switchyard-worker", "switchyard-dispatcher"}


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_the_compose_services_run_the_procfile_commands():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    procfile = _procfile()
    processes = {
        name: service
        for name, service in services.items()
        if "switchyard.process" in service.get("labels", {})
    }
    assert set(processes) >= {"web", "worker", "dispatcher"}
    for name, service in processes.items():
        assert service["labels"]["switchyard.process"] == name
        shell, flag, command = service["command"]
        assert (shell, flag) == ("sh", "-c")
        # "$$" is compose's escape: the container's shell expands the variable, as honcho does.
        assert shlex.split(command.replace("$$", "$")) == shlex.split(procfile[name]), name
    assert {"postgres", "redis"} <= set(services)
    web_env = processes["web"]["environment"]
    assert web_env["DATABASE_URL"].startswith("postgres://") and web_env["REDIS_URL"]
    assert processes["worker"]["environment"]["SWITCHYARD_METRICS_PORT"]
