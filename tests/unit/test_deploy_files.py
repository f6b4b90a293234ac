"""docker-compose.yml and deploy/ cannot run here (no Docker engine); check what can be checked."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.runtime.cli import _parser
from services.runtime.serve import SERVICES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


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
    known = {name.upper() for name in Settings.model_fields}
    for name, spec in compose()["services"].items():
        for key in spec.get("environment") or {}:
            if name.startswith(("nats", "postgres")):
                continue
            assert key in known, f"{name}: {key} is not a setting AgentOps reads"


def test_compose_has_a_three_node_jetstream_cluster_and_replicated_stream() -> None:
    services = compose()["services"]
    nodes = [n for n in services if n.startswith("nats-")]
    assert len(nodes) == 3
    for node in nodes:
        conf = (ROOT / "deploy" / "nats" / f"{node}.conf").read_text()
        assert "jetstream" in conf and f"server_name: {node}" in conf
        assert len(re.findall(r"nats-route://nats-\d:6222", conf)) == 3
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
