"""NATS identities and the server configuration that gives each one only its own subjects.

`agentops up` creates the identities under AGENTOPS_HOME/identity on first start (seeds 0600, one
per service and tool, plus signers.json, the public keys every service trusts) and writes the
nats-server configuration from them; `agentops nats config` writes the same for an external
server or a cluster. The permissions come from one table, shared/identity.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.runtime.secretfiles import write_private
from shared.errors import StartupError
from shared.identity import (
    BUCKETS,
    CONSUMES,
    HEARS,
    SERVICES,
    SIGNERS_BUCKET,
    TOOLS,
    Signer,
    durable_name,
    inbox_prefix,
    new_seed,
)
from shared.identity import produces as produced_by

STREAM = "AGENTOPS"
IDENTITIES = (*SERVICES, *TOOLS)


def ensure_identities(folder: Path) -> dict[str, Signer]:
    """Load the identities in `folder`, creating any that are missing (0600); writes signers.json."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    signers = {}
    for identity in IDENTITIES:
        path = folder / f"{identity}.nk"
        if not path.exists():
            write_private(path, new_seed() + "\n")
        try:
            signers[identity] = Signer(identity, path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise StartupError(
                f"{path} is damaged ({exc}): restore it from a backup, or delete it and a new key is made "
                "(events the old key signed stay verifiable only if signers.json still lists it)"
            ) from None
    trusted = {s: [signers[s].public_key] for s in SERVICES}
    existing = folder / "signers.json"
    if existing.exists():  # keep retired keys, so rows they signed still verify
        try:
            kept = json.loads(existing.read_text()).get("keys", {})
        except (ValueError, AttributeError):
            raise StartupError(f"{existing} is damaged: restore it from a backup (it lists the signing keys)") from None
        for service, keys in kept.items():
            trusted.setdefault(service, [])
            trusted[service] += [k for k in keys if k not in trusted[service]]
    existing.write_text(json.dumps({"keys": trusted}, indent=2) + "\n")
    return signers


def _js_consumer(durable: str) -> list[str]:
    api = "$JS.API.CONSUMER"
    return [
        f"{api}.CREATE.{STREAM}.{durable}",
        f"{api}.CREATE.{STREAM}.{durable}.>",
        f"{api}.DURABLE.CREATE.{STREAM}.{durable}",
        f"{api}.INFO.{STREAM}.{durable}",
        f"{api}.MSG.NEXT.{STREAM}.{durable}",
        f"$JS.ACK.{STREAM}.{durable}.>",
    ]


def _kv(bucket: str, write: bool) -> list[str]:
    stream = f"KV_{bucket}"
    read = [
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        # KV keys()/history() read through an ordered consumer of their own
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.FC.{stream}.>",
    ]
    if not write:
        return read
    return [*read, f"$KV.{bucket}.>", f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.UPDATE.{stream}"]


def permissions(identity: str) -> dict[str, dict[str, list[str]]]:
    """Exactly what `identity` may publish and subscribe to."""
    if identity == "admin":
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    inbox = f"{inbox_prefix(identity)}.>"
    publish = ["$JS.API.INFO", f"$JS.API.STREAM.INFO.{STREAM}", *_kv(SIGNERS_BUCKET, write=False)]
    subscribe = [inbox]
    if identity == "cli":
        publish += ["agentops.replay.>"]
        subscribe += ["agentops.>"]
    else:
        publish += [f"agentops.{t}" for t in produced_by(identity)]
        for event_type in CONSUMES.get(identity, ()):
            publish += _js_consumer(durable_name(identity, event_type))
        subscribe += [f"agentops.{t}" for t in HEARS.get(identity, ())]
    if identity in ("gateway", "cli"):  # readiness: how far the auditor is behind (read only)
        publish += [
            f"$JS.API.CONSUMER.INFO.{STREAM}.{durable_name('auditor', '>')}",
            f"$JS.API.STREAM.MSG.GET.{STREAM}",
        ]
    for bucket in BUCKETS.get(identity, ()):
        publish += _kv(bucket, write=True)
    return {"publish": {"allow": publish}, "subscribe": {"allow": subscribe}}


def server_config(
    signers: dict[str, Signer],
    *,
    host: str = "127.0.0.1",
    port: int = 4222,
    store_dir: Path | str = "/data/jetstream",
    server_name: str | None = None,
    cluster: dict[str, object] | None = None,
    monitor_port: int | None = None,
) -> str:
    """A nats-server configuration: JetStream, one nkey user per identity, nothing anonymous."""
    users = [{"nkey": signers[i].public_key, "permissions": permissions(i)} for i in IDENTITIES if i in signers]
    lines = []
    if server_name:
        lines.append(f"server_name: {json.dumps(server_name)}")
    lines += [
        f"listen: {json.dumps(f'{host}:{port}')}",
        # JSON is valid NATS configuration syntax: the generated parts are written as JSON.
        f"jetstream: {json.dumps({'store_dir': str(store_dir)})}",
        # a connection that has not authenticated within `timeout` seconds is closed
        f"authorization: {json.dumps({'timeout': 2, 'users': users}, indent=2)}",
    ]
    if monitor_port is not None:  # the monitoring port has no auth: loopback only
        lines.append(f"http: {json.dumps(f'127.0.0.1:{monitor_port}')}")
    if cluster:
        lines.append(f"cluster: {json.dumps(cluster, indent=2)}")
    return "\n".join(line for line in lines if line) + "\n"


def auth_include(signers: dict[str, Signer]) -> str:
    """The authorization block alone, for a server configuration that includes it (compose)."""
    users = [{"nkey": signers[i].public_key, "permissions": permissions(i)} for i in IDENTITIES if i in signers]
    return f"authorization: {json.dumps({'timeout': 2, 'users': users}, indent=2)}\n"


def cluster_include(route_password: str, nodes: list[str], port: int = 6222) -> str:
    """The cluster block: routes between the nodes authenticate too."""
    cluster = {
        "name": "agentops",
        "listen": f"0.0.0.0:{port}",
        "authorization": {"user": "route", "password": route_password, "timeout": 2},
        "routes": [f"nats-route://route:{route_password}@{node}:{port}" for node in nodes],
    }
    return f"cluster: {json.dumps(cluster, indent=2)}\n"
