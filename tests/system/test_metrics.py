"""Prometheus text at every service of a running `agentops up`: the gateway at /metrics (behind a
viewer key), the others where `agentops status` says, each counting what it did for a command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

from services.runtime.embedded import free_port
from tests.infra import until
from tests.system.test_agentops_up import dashboard_key, get, post, start, stop, wait_for_line
from tests.unit.test_deploy_files import dashboard_and_rule_metrics, metric_names


def scrape(url: str, key: str = "") -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain")
        return response.read().decode()


def test_every_service_exports_what_it_did_for_a_command(tmp_path: Path) -> None:
    home, port = tmp_path / "state", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(home, port)
    try:
        key = dashboard_key(wait_for_line(proc, "Dashboard"), base)
        command = {"command": "deploy llama-3.1 8B for metered", "env": "staging"}
        answer = post(f"{base}/api/agent/command", command, key)
        plan = f"{base}/api/deployments/{answer['plan_id']}"
        assert until(lambda: get(plan, key)[1].get("plan", {}).get("status") == "deployed")
        assert get(f"{base}/metrics")[0] == 401  # not for anyone who can reach the port
        gateway = scrape(f"{base}/metrics", key)
        assert 'agentops_commands_total{outcome="deploying"} 1.0' in gateway
        assert "agentops_approvals_pending 0.0" in gateway
        where = json.loads((home / "runtime.json").read_text())["metrics"]
        assert set(where) == {"auditor", "planner", "guardian", "executor", "notifier", "gateway"}
        expected = {
            "planner": [
                'agentops_planning_seconds_count{planner="rules"} 1.0',
                "agentops_received_messages_total",
                'agentops_retrieval_seconds_count{retriever="Bm25Retriever"}',
            ],
            "guardian": ["agentops_received_processed_messages_duration_seconds", "agentops_published_messages_total"],
            "executor": ['agentops_sagemaker_calls_total{error="",mode="dry-run",operation="CreateEndpoint"} 1.0'],
            "auditor": ["agentops_audit_batch_size_count", "agentops_audit_lag_events"],
            "notifier": ["agentops_received_messages_total"],
        }
        for service, names in expected.items():
            text = scrape(where[service])
            for name in names:
                assert name in text, (service, name)
        # every metric the dashboard and the alert rules name is exported by some service
        exported = set().union(*(metric_names(scrape(url, key)) for url in where.values()))
        missing = dashboard_and_rule_metrics() - exported
        assert not missing, missing
        status = subprocess.run(
            [sys.executable, "-m", "services.runtime.cli", "status"],
            env={**os.environ, "AGENTOPS_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert f"metrics: executor {where['executor']}" in status.stdout, status.stdout + status.stderr
        commands_go_on_while_metrics_are_scraped_and_stalled(base, key, where)
    finally:
        stop(proc)


def commands_go_on_while_metrics_are_scraped_and_stalled(base: str, key: str, where: dict[str, str]) -> None:
    """A scrape runs beside the handlers, never in their way: with every metrics port scraped in a
    loop and held by clients that send half a request and stop, commands still deploy, and a scrape
    still answers."""
    stop_scraping, errors, scrapes = threading.Event(), [], [0]

    def scrape_in_a_loop(url: str) -> None:
        while not stop_scraping.is_set():
            try:
                scrape(url, key)
                scrapes[0] += 1
            except Exception as exc:  # recorded, asserted below
                errors.append(f"{url}: {exc!r}")

    stalled = []
    for url in where.values():
        parsed = urllib.parse.urlsplit(url)
        for _ in range(5):
            conn = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
            conn.sendall(f"GET {parsed.path} HTTP/1.1\r\nHost: x\r\n".encode())  # and never the rest
            stalled.append(conn)
    threads = [threading.Thread(target=scrape_in_a_loop, args=(url,), daemon=True) for url in where.values()]
    for thread in threads:
        thread.start()
    try:
        plans = [
            post(f"{base}/api/agent/command", {"command": f"deploy qwen 2.5 7b for scraped-{i}", "env": "staging"}, key)
            for i in range(5)
        ]
        for answer in plans:
            plan = f"{base}/api/deployments/{answer['plan_id']}"
            assert until(lambda plan=plan: get(plan, key)[1].get("plan", {}).get("status") == "deployed")
        assert until(lambda: scrapes[0] >= 2 * len(where))
    finally:
        stop_scraping.set()
        for thread in threads:
            thread.join(30)
        for conn in stalled:
            conn.close()
    assert not errors, errors[:5]
