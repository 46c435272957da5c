"""deploy/: Prometheus and Alertmanager configs pass their own checkers, the compose file has no
default passwords, runs nothing as root, keeps 30 days, and the configs agree with each other."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OBSERVABILITY = {"prometheus", "alertmanager", "loki", "alloy", "grafana"}
SECRETS = {
    "POSTGRES_PASSWORD": "pw-for-tests",
    "LAKELENS_API_TOKEN": "token-for-tests",
    "GF_SECURITY_ADMIN_PASSWORD": "grafana-for-tests",
}


def _run(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, **kwargs
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return document


def test_promtool_checks_prometheus_yml(tmp_path: Path, require_tool: Any) -> None:
    promtool = require_tool("promtool", "apt-get install prometheus")
    source = DEPLOY / "prometheus" / "prometheus.yml"
    syntax = _run(promtool, "check", "config", "--syntax-only", source)
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # The full check also loads the rule files and the token file, which only exists inside
    # the container (a compose secret): check a copy that points at a local token instead.
    token = tmp_path / "token"
    token.write_text("t")
    text = source.read_text().replace("/run/secrets/lakelens_api_token", str(token))
    text = text.replace("- rules/*.yml", f"- {DEPLOY / 'prometheus' / 'rules'}/*.yml")
    (tmp_path / "prometheus.yml").write_text(text)
    full = _run(promtool, "check", "config", tmp_path / "prometheus.yml")
    assert full.returncode == 0, full.stdout + full.stderr
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "lakelens.yml").read_text())
    count = sum(len(group["rules"]) for group in shipped["groups"])
    assert count >= 9  # the generic freshness rule and the rules about lakelens itself
    assert f"SUCCESS: {count} rules found" in full.stdout


def test_amtool_checks_alertmanager_yml(require_tool: Any) -> None:
    amtool = require_tool("amtool", "apt-get install prometheus-alertmanager")
    result = _run(amtool, "check-config", DEPLOY / "alertmanager" / "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=LakelensDown", "service=lakelens", "severity=critical"], "platform-oncall"),
        (
            ["alertname=EvaluatorStalled", "service=lakelens", "severity=critical"],
            "platform-oncall",
        ),
        (["alertname=AssetErrorRate", "service=lakelens", "severity=critical"], "data-oncall"),
        (["alertname=DatasetFreshness", "service=lakelens", "severity=warning"], "data-team"),
    ],
)
def test_alertmanager_routes_the_generated_labels(
    labels: list[str], receiver: str, require_tool: Any
) -> None:
    amtool = require_tool("amtool", "apt-get install prometheus-alertmanager")
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    result = _run(amtool, "config", "routes", "test", f"--config.file={config}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_no_container_runs_as_root(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        user = str(service.get("user", ""))
        assert user, f"{name} has no user:"
        assert user.split(":")[0] not in ("0", "root"), f"{name} runs as root"
        assert service.get("cap_drop") == ["ALL"], name


def test_no_default_passwords(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "${GF_SECURITY_ADMIN_PASSWORD:?set it in .env}"
    text = (DEPLOY / "docker-compose.yml").read_text()
    # Every secret is interpolated with `:?` (compose refuses to start without it), never `:-`.
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), (secret, uses)
    example = (DEPLOY / ".env.example").read_text()
    for secret in SECRETS:
        assert re.search(rf"^{secret}=$", example, re.M), f"{secret} must be empty in .env.example"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_profiles_ports_and_retention(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {n for n, s in services.items() if "observability" in s.get("profiles", [])} == (
        OBSERVABILITY
    )
    assert {"lakelens", "postgres"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
    assert "--storage.tsdb.retention.time=30d" in services["prometheus"]["command"]
    assert services["lakelens"]["environment"]["LAKELENS_RETENTION_DAYS"] == "30"
    loki = yaml.safe_load((DEPLOY / "loki" / "loki.yml").read_text())
    assert loki["limits_config"]["retention_period"] == "720h"
    assert loki["compactor"]["retention_enabled"] is True


def test_mounted_config_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    dockerfile = compose["services"]["lakelens"]["build"]["dockerfile"]
    assert (DEPLOY.parent / dockerfile).exists()


def test_configs_agree_with_each_other(compose: dict[str, Any]) -> None:
    """Service names and ports in prometheus.yml, Grafana's provisioning and Alloy match compose."""
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["lakelens"]["static_configs"][0]["targets"] == ["lakelens:8765"]
    secret = jobs["lakelens"]["authorization"]["credentials_file"]
    assert secret == "/run/secrets/lakelens_api_token"
    assert "lakelens_api_token" in compose["services"]["prometheus"]["secrets"]
    alloy = (DEPLOY / "alloy" / "config.alloy").read_text()
    exporter = re.search(r'prometheus\.exporter\.postgres "(\w+)"', alloy)
    assert exporter is not None
    assert jobs["postgres"]["metrics_path"] == (
        f"/api/v0/component/prometheus.exporter.postgres.{exporter.group(1)}/metrics"
    )
    dsn = re.search(r'sys\.env\("(\w+)"\)', alloy)
    assert dsn is not None and dsn.group(1) in compose["services"]["alloy"]["environment"]
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "lakelens.yml").read_text()
    )
    urls = {d["type"]: d["url"] for d in sources["datasources"]}
    assert urls == {
        "prometheus": "http://prometheus:9090",
        "loki": "http://loki:3100",
        "alertmanager": "http://alertmanager:9093",
    }
    providers = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "lakelens.yml").read_text()
    )
    mounts = [v.split(":")[1] for v in compose["services"]["grafana"]["volumes"]]
    assert providers["providers"][0]["options"]["path"] in mounts


def _compose_command() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        if _run(*command, "version").returncode == 0:
            return command
    return None


def test_docker_compose_config_validates_and_refuses_without_secrets(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no docker client with the compose plugin (`docker compose version` fails)")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    compose_file = DEPLOY / "docker-compose.yml"
    empty = tmp_path / "empty.env"  # not a developer's deploy/.env
    empty.write_text("")
    args = [*command, "-f", str(compose_file), "--env-file", str(empty)]
    args += ["--profile", "observability", "config", "-q"]
    ok = _run(*args, env={**env, **SECRETS}, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    missing = _run(
        *args,
        env={**env, **{k: v for k, v in SECRETS.items() if k != "GF_SECURITY_ADMIN_PASSWORD"}},
        cwd=tmp_path,
    )
    assert missing.returncode != 0
    assert "GF_SECURITY_ADMIN_PASSWORD" in missing.stderr or "set it in .env" in missing.stderr
