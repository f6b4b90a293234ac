"""docker-compose.yml and deploy/ cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from services.runtime.cli import _parser
from services.runtime.serve import SERVICES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


OTEL_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"}


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_runs_every_service_from_the_one_image_with_a_real_agentops_command() -> None:
    services = compose()["services"]
    parser = _parser()
    for name in SERVICES:
        assert name in services, f"{name} missing from docker-compose.yml"
        spec = services[name]
        assert spec["image"] == "agentops:latest"
        assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
        args = parser.parse_args(spec["command"])  # the Dockerfile's ENTRYPOINT is `agentops`
        assert args.service == name
    assert parser.parse_args(services["migrate"]["command"]).func.__name__ == "_migrate"


def test_compose_environment_names_only_settings_that_exist() -> None:
    # AgentOps's settings, and the standard OpenTelemetry variables its tracing reads
    known = {name.upper() for name in Settings.model_fields} | OTEL_VARIABLES
    for name, spec in compose()["services"].items():
        for key in spec.get("environment") or {}:
            if name.startswith(("nats", "postgres", "prometheus", "grafana")):
                continue
            assert key in known, f"{name}: {key} is not a setting AgentOps reads"


def test_compose_has_a_three_node_jetstream_cluster_and_replicated_stream() -> None:
    services = compose()["services"]
    nodes = [n for n in services if n.startswith("nats-")]
    assert len(nodes) == 3
    for node in nodes:
        conf = (ROOT / "deploy" / "nats" / f"{node}.conf").read_text()
        assert "jetstream" in conf and f"server_name: {node}" in conf
        assert "include ./auth.conf" in conf and "include ./cluster.conf" in conf
        assert "http" not in conf.replace("# ", "")  # no monitoring port
        mounts = services[node]["volumes"]
        assert "./deploy/secrets/nats-auth.conf:/etc/nats/auth.conf:ro" in mounts
        assert "./deploy/secrets/nats-cluster.conf:/etc/nats/cluster.conf:ro" in mounts
        assert "ports" not in services[node]  # reachable only on the compose network
    env = services["gateway"]["environment"]
    assert env["STREAM_REPLICAS"] == "3"
    assert env["NATS_URL"].count("nats://") == 3


def test_gateway_port_is_published_and_matches_its_setting() -> None:
    gateway = compose()["services"]["gateway"]
    assert gateway["ports"] == [f"{gateway['environment']['GATEWAY_PORT']}:{gateway['environment']['GATEWAY_PORT']}"]
    assert gateway["environment"]["GATEWAY_HOST"] == "0.0.0.0"


def test_dockerfile_installs_the_package_and_enters_through_agentops() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["agentops"]' in dockerfile
    assert "pip install -e ." in dockerfile
    assert "USER agentops" in dockerfile  # not root
    for path in ("shared", "services", "pyproject.toml"):
        assert path in dockerfile


def test_the_image_holds_what_the_code_reads_beside_it() -> None:
    """The planner's knowledge/ and the gateway's dashboard build are found relative to the code,
    so the image must put them where those paths resolve under WORKDIR."""
    from services.gateway.dashboard import DEFAULT_DIR
    from services.planner.retrieval import KNOWLEDGE

    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    final = dockerfile.rsplit("FROM python", 1)[1]
    workdir = Path(re.findall(r"^WORKDIR (\S+)", final, re.M)[-1])
    copies = {Path(dest) for dest in re.findall(r"^COPY (?:--from=\S+ )?\S+ (\S+)$", final, re.M)}
    for needed in (KNOWLEDGE, DEFAULT_DIR):
        assert (workdir / needed.relative_to(ROOT)).resolve() in {(workdir / c).resolve() for c in copies}, needed
    # the dashboard stage builds from the committed lockfile
    assert "npm ci" in dockerfile and "frontend/package-lock.json" in dockerfile
    assert (ROOT / "frontend" / "package-lock.json").is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "**/node_modules" in ignored and ".git" in ignored


def test_compose_secrets_are_made_by_the_command_and_each_service_gets_only_its_own(tmp_path: Path) -> None:
    from services.runtime.dbroles import SERVICE_LOGIN
    from services.runtime.provision import compose_secrets

    made = {p.name for p in compose_secrets(tmp_path / "secrets")}
    spec = compose()
    declared = spec["secrets"]
    for name, entry in declared.items():
        assert entry["file"] == f"./deploy/secrets/{name}" and name in made, name
    for name, service in spec["services"].items():
        for mount in service.get("volumes") or []:
            if mount.startswith("./deploy/secrets/"):
                assert mount.split(":")[0].rsplit("/", 1)[1] in made
        if name not in SERVICES:
            continue
        own = set(service.get("secrets") or [])
        nkeys = {s for s in own if s.endswith(".nk")}
        assert nkeys == {f"{name}.nk"}, f"{name} must hold its own nkey and no other"
        assert "signers.json" in own and "postgres.password" not in own and "db-passwords.json" not in own
        env = service.get("environment") or {}
        if name in SERVICE_LOGIN:
            login = SERVICE_LOGIN[name]
            assert env["DATABASE_URL"] == f"postgresql://{login}@postgres:5432/agentops"
            assert env["DATABASE_PASSWORD_FILE"] == f"/run/secrets/{login}.password" and f"{login}.password" in own
        else:
            assert "DATABASE_URL" not in env, f"{name} never touches the database"
    published = {n for n, s in spec["services"].items() if s.get("ports")}
    assert published == {"gateway", "prometheus", "grafana"}  # the last two: 127.0.0.1 only


def test_each_nats_node_configuration_is_valid_with_the_generated_includes(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from services.runtime.embedded import nats_server_binary
    from services.runtime.provision import compose_secrets

    compose_secrets(tmp_path / "secrets")
    for node in ("nats-1", "nats-2", "nats-3"):
        folder = tmp_path / node
        folder.mkdir()
        conf = (ROOT / "deploy" / "nats" / f"{node}.conf").read_text().replace("/data/jetstream", str(folder / "js"))
        (folder / "nats.conf").write_text(conf)
        shutil.copy(tmp_path / "secrets" / "nats-auth.conf", folder / "auth.conf")
        shutil.copy(tmp_path / "secrets" / "nats-cluster.conf", folder / "cluster.conf")
        checked = subprocess.run(
            [nats_server_binary(), "-t", "-c", str(folder / "nats.conf")], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr + checked.stdout


def test_nats_config_for_an_external_server_is_valid_and_admits_only_the_identities(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from services.runtime.embedded import nats_server_binary

    env = {**os.environ, "IDENTITY_DIR": str(tmp_path / "identity")}
    out = tmp_path / "nats.conf"
    made = subprocess.run(
        [sys.executable, "-m", "services.runtime.cli", "nats", "config", "-o", str(out), "--store-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    text = out.read_text()
    assert "127.0.0.1:4222" in text and text.count('"nkey"') == 8 and "http" not in text
    assert (out.stat().st_mode & 0o777) == 0o600
    checked = subprocess.run([nats_server_binary(), "-t", "-c", str(out)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr + checked.stdout


OBSERVABILITY = ROOT / "deploy" / "observability"


def metric_names(text: str) -> set[str]:
    """The AgentOps metric families an expression names (suffixes of counters and histograms off)."""
    names = set(re.findall(r"agentops_[a-z_]+", text))
    return {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in names}


def dashboard_and_rule_metrics() -> set[str]:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    exprs = [r["expr"] for group in rules["groups"] for r in group["rules"]]
    dashboard = json.loads((OBSERVABILITY / "grafana" / "dashboards" / "agentops.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    return set().union(*(metric_names(str(e)) for e in exprs))


def test_prometheus_scrapes_every_service_where_compose_serves_its_metrics() -> None:
    services = compose()["services"]
    port = services["planner"]["environment"]["METRICS_PORT"]
    prometheus = yaml.safe_load((OBSERVABILITY / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    gateway = services["gateway"]["environment"]["GATEWAY_PORT"]
    assert targets == {f"{s}:{port}" for s in SERVICES if s != "gateway"} | {f"gateway:{gateway}"}
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/observability/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["observability"]
    for name in ("prometheus", "grafana"):  # reachable from this machine only
        assert all(p.startswith("127.0.0.1:") for p in services[name]["ports"])


def test_every_alert_says_what_and_how_bad_and_every_panel_has_a_query() -> None:
    rules = yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())
    for rule in (r for group in rules["groups"] for r in group["rules"]):
        assert rule["expr"] and rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
    assert {"AuditLogStuck", "ConsumerFallingBehind", "DeploymentsFailing", "ApprovalsOverdue"} <= {
        r["alert"] for g in rules["groups"] for r in g["rules"]
    }
    assert len(dashboard_and_rule_metrics()) >= 12
