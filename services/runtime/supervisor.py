"""`agentops up`: infrastructure (embedded unless configured), migrations, then one process per service."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import Any

from services.runtime.bootstrap import SERVICES
from services.runtime.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from services.runtime.processes import check_port, clean_leftovers, die_with_parent, hold_folder, record_pids
from shared.settings import Settings

RESTART_BACKOFF_MAX = 10.0


class Supervisor:
    def __init__(self, settings: Settings, port: int | None = None, sandbox: bool = False) -> None:
        self.sandbox = sandbox
        self.moto: object | None = None
        self.settings = settings
        self.home = settings.agentops_home.resolve()
        self.port = port if port is not None else settings.gateway_port
        self.nats: EmbeddedNats | None = None
        self.pg: EmbeddedPostgres | None = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logins: dict[str, str] = {}
        self.identities = self.home / "identity"
        self.restarts: dict[str, int] = {}
        self.metrics_ports: dict[str, int] = {}
        self.stopping = False

    def run(self) -> int:
        self.lock = hold_folder(self.home)  # one `up` per state folder, released however it ends
        if stopped := clean_leftovers(self.home):
            say(f"stopped {len(stopped)} processes an earlier run of {self.home} left behind")
        check_port(self.settings.gateway_host, self.port)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            env = self._infrastructure()
            from services.gateway.auth import ensure_local_admin

            key = ensure_local_admin(self.settings)
            for service in SERVICES:
                self.procs[service] = self._spawn(service, env)
                say(f"started {service} (pid {self.procs[service].pid})")
            self._record_pids()
            url = f"http://{self.settings.gateway_host}:{self.port}"
            self._wait_ready(url)
            say(f"AgentOps is up: {url}  (API docs {url}/docs; Ctrl-C stops everything)")
            say(f"Metrics: {url}/metrics; the other services' with `agentops status`")
            if self.settings.log_format == "json":  # a log line never holds a key: say where it is
                say(f"Dashboard: {url}/ (the local admin key is in {self.home / 'admin-key'})")
            else:
                say(f"Dashboard (signed in as the local admin): {url}/#key={key}")
            self._watch(env)
            return 0
        finally:
            self.shutdown()

    def _infrastructure(self) -> dict[str, str]:
        import asyncio

        from services.runtime.natsconf import ensure_identities
        from services.runtime.provision import database_logins
        from shared.broker import ensure_stream, publish_signers

        env = dict(os.environ)
        identities = self.settings.identity_path.resolve()
        ensure_identities(identities)  # first start: one key per service, 0600; later: reused
        nats_url, db_url = self.settings.nats_url, self.settings.database_url
        if not nats_url:
            self.nats = EmbeddedNats(self.home / "nats", identities=identities, tied=True).start()
            nats_url = self.nats.url
            say(f"embedded nats-server {nats_url} (store {self.home / 'nats'}; nkey users only)")
        if not db_url:
            self.pg = EmbeddedPostgres(self.home / "postgres", tied=True).start()
            db_url = self.pg.url()
            say(f"embedded PostgreSQL 127.0.0.1:{self.pg.port} (data {self.home / 'postgres'}; scram-sha-256)")
        self.logins = database_logins(db_url, self.home)
        admin_settings = self.settings.model_copy(update={"identity_dir": identities})
        asyncio.run(ensure_stream(nats_url, admin_settings))
        asyncio.run(publish_signers(nats_url, admin_settings))
        if self.port == 0:
            self.port = free_port()
        env.update(NATS_URL=nats_url, GATEWAY_PORT=str(self.port))
        env.pop("IDENTITY_DIR", None)  # each service gets a folder with its own seed only (see _spawn)
        env.pop("TRUSTED_SIGNERS_FILE", None)
        self.identities = identities
        env.pop("DATABASE_URL", None)  # each service gets its own login, or none (see _spawn)
        if self.sandbox:
            env.update(self._moto())
        self._write_runtime(nats_url)
        return env

    def _moto(self) -> dict[str, str]:
        """A moto server in this process; the executor drives it through the real boto3 path."""
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        server.start()
        self.moto = server
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        say(f"sandbox: moto server {url} stands in for SageMaker and CloudWatch")
        fake = {k: "testing" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if k not in os.environ}
        return {"EXECUTOR_MODE": "sandbox", "SAGEMAKER_ENDPOINT_URL": url, **fake}

    def _write_runtime(self, nats_url: str) -> None:
        from services.runtime.secretfiles import write_private

        runtime = {
            "nats_url": nats_url,
            # the operator tools' logins: reading (verify, export, replay), and the auditor's (rebuild)
            "database_url": self.logins["cli"],
            "database_urls": {k: self.logins[k] for k in ("cli", "auditor", "owner")},
            "gateway_port": self.port,
            "pid": os.getpid(),
        }
        write_private(self.home / "runtime.json", json.dumps(runtime, indent=2))

    def _own_identity(self, service: str) -> Path:
        """A folder holding this service's seed and the public signers.json, nothing else: as in
        compose, no service process is handed another's key (or the admin's)."""
        from services.runtime.secretfiles import write_private

        folder = self.home / "run" / service
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        write_private(folder / f"{service}.nk", (self.identities / f"{service}.nk").read_text())
        write_private(folder / "signers.json", (self.identities / "signers.json").read_text())
        return folder

    def _spawn(self, service: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        own = dict(env, IDENTITY_DIR=str(self._own_identity(service)))
        if service != "gateway":  # the gateway's are at /metrics
            own["METRICS_PORT"] = str(self.metrics_ports.setdefault(service, free_port()))
        if service in self.logins:  # planner, executor and notifier never touch the database
            own["DATABASE_URL"] = self.logins[service]
        return subprocess.Popen(
            [sys.executable, "-m", "services.runtime.cli", "serve", service], env=own, preexec_fn=die_with_parent
        )

    def _metrics_urls(self) -> None:
        from services.runtime.secretfiles import write_private

        path = self.home / "runtime.json"
        runtime = json.loads(path.read_text()) if path.exists() else {}
        runtime["metrics"] = {s: f"http://127.0.0.1:{p}/metrics" for s, p in self.metrics_ports.items()}
        runtime["metrics"]["gateway"] = f"http://{self.settings.gateway_host}:{self.port}/metrics"
        write_private(path, json.dumps(runtime, indent=2))

    def _record_pids(self) -> None:
        """What this run started, so a later `up` can stop it if this one dies without cleaning up."""
        pids = {name: proc.pid for name, proc in self.procs.items()}
        self._metrics_urls()
        for name, server in (("nats", self.nats), ("postgres", self.pg)):
            if server is not None and server.proc is not None:
                pids[name] = server.proc.pid
        record_pids(self.home, pids)

    def _wait_ready(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        if not self.stopping:
            raise SystemExit(f"the gateway did not become ready at {url}/readyz within {timeout}s")

    def _watch(self, env: dict[str, str]) -> None:
        while not self.stopping:
            for service, proc in list(self.procs.items()):
                if proc.poll() is not None and not self.stopping:
                    count = self.restarts.get(service, 0) + 1
                    self.restarts[service] = count
                    delay = min(RESTART_BACKOFF_MAX, 0.5 * 2 ** min(count, 5))
                    say(f"{service} exited with code {proc.returncode}; restarting in {delay:.1f}s")
                    time.sleep(delay)
                    self.procs[service] = self._spawn(service, env)
                    self._record_pids()
            time.sleep(0.2)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def shutdown(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.moto is not None:
            self.moto.stop()  # type: ignore[attr-defined]
        if self.nats:
            self.nats.stop()
        if self.pg:
            self.pg.stop()
        (self.home / "runtime.json").unlink(missing_ok=True)
        say("AgentOps stopped.")


def runtime_urls(home: Path) -> dict[str, Any] | None:
    path = home.resolve() / "runtime.json"
    return json.loads(path.read_text()) if path.exists() else None


def say(message: str) -> None:
    """A line for the operator: plain, or with LOG_FORMAT=json one JSON object like every service's."""
    if os.environ.get("LOG_FORMAT", "").lower() == "json":
        from datetime import UTC, datetime

        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        message = json.dumps({"time": stamp, "service": "supervisor", "level": "info", "message": message})
    print(message, flush=True)


def exit_for_restart(service: str, consumer: str, pending: int) -> None:
    """A service process whose consumer went silent ends, to be started again: `agentops up`
    restarts a service that exits, as compose's restart policy does (see ConsumerWatchdog)."""
    logging.getLogger("agentops.supervisor").error(
        "%s: consumer %s has %s events waiting and nobody pulling them; exiting to be restarted",
        service,
        consumer,
        pending,
    )
    logging.shutdown()
    os._exit(70)
