"""Who may say what on the bus, and how an event proves who said it (DESIGN.md, "Trust").

One table owns the rule: which service produces each event type and which types it consumes.
The nats-server permissions (`services/runtime/natsconf.py`), the signature check every consumer
runs and `audit verify` all read it from here.

Each service has one Ed25519 key: its NATS nkey (a user seed, `SU...`) authenticates its
connection and signs what it publishes. The signature covers the event's canonical bytes (the
body as published) and travels in two headers; consumers act only on an event whose signer is
trusted and owns its type.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import StartupError

SERVICES = ("gateway", "planner", "guardian", "executor", "auditor", "notifier")
# Operator tools (`audit replay --publish`, `events tail`, `audit keys`) and the setup identity
# (`agentops up` creates the stream and publishes the public keys) are identities too.
TOOLS = ("cli", "admin")

SIGNER_HEADER = "Agentops-Signer"
SIGNATURE_HEADER = "Agentops-Signature"

# event type -> the services that produce it (DESIGN.md's event table)
PRODUCERS: dict[str, frozenset[str]] = {
    "intent.received": frozenset({"gateway"}),
    "plan.proposed": frozenset({"planner"}),
    "plan.failed": frozenset({"planner"}),
    "plan.rejected": frozenset({"guardian"}),
    "approval.requested": frozenset({"guardian"}),
    # people decide through the gateway; the guardian only ever decides "expired"
    "approval.decided": frozenset({"gateway", "guardian"}),
    "deployment.requested": frozenset({"guardian"}),
    # people act through the gateway; the guardian pauses only, for a budget past a pause threshold;
    # the executor pauses an idle endpoint and pauses and restarts on a schedule (a restart then
    # passes the guardian like anyone's)
    "deployment.action": frozenset({"gateway", "guardian", "executor"}),
    "deployment.status": frozenset({"executor"}),
    "deployment.changed": frozenset({"executor"}),
    "budget.set": frozenset({"gateway"}),
    "budget.threshold_crossed": frozenset({"guardian"}),
    "schedule.set": frozenset({"gateway"}),
    "notification.failed": frozenset({"notifier"}),
    # every consumer records what it refused, as itself
    "message.rejected": frozenset(SERVICES),
}

# service -> the event types it consumes through its durable consumers
CONSUMES: dict[str, tuple[str, ...]] = {
    "planner": ("intent.received",),
    # deployment.changed: how the updates it requested ended (what a rollback returns to)
    "guardian": ("plan.proposed", "approval.decided", "deployment.action", "deployment.changed", "budget.set"),
    "executor": ("deployment.requested", "deployment.action", "schedule.set"),
    "auditor": (">",),
    "notifier": (">",),
    "gateway": (),
}
# service -> event types it hears on core subscriptions (not durable)
HEARS: dict[str, tuple[str, ...]] = {
    "gateway": ("plan.failed", "plan.rejected", "approval.requested", "deployment.requested"),
}
# service -> KV buckets it owns (reads and writes)
BUCKETS: dict[str, tuple[str, ...]] = {
    "gateway": ("gateway-idempotency",),
    "guardian": ("guardian-plans", "guardian-pending", "guardian-endpoints", "guardian-budgets"),
    "executor": ("executor-deployments", "executor-schedules"),
    "auditor": ("audit-anchors",),
    "cli": ("audit-anchors",),
}
SIGNERS_BUCKET = "agentops-signers"


def inbox_prefix(identity: str) -> str:
    """Replies (JetStream acks, pulled messages, KV reads) come to this identity's inboxes only."""
    return f"_INBOX_{identity}"


def produces(service: str) -> list[str]:
    return sorted(t for t, owners in PRODUCERS.items() if service in owners)


def durable_name(service: str, event_type: str) -> str:
    """The durable consumer a service reads `event_type` through (`>`: every event)."""
    return f"{service}-{event_type.replace('.', '-').replace('>', 'all')}"


def may_produce(service: str, event_type: str, data: Any = None) -> str | None:
    """None when `service` may say an event of this type (with this data); else why not."""
    owners = PRODUCERS.get(event_type)
    if owners is None:
        return f"{event_type} is not in the event catalog"
    if service not in owners:
        return f"{event_type} is produced by {', '.join(sorted(owners))}, not {service}"
    if event_type == "approval.decided" and service == "guardian" and _get(data, "decision") != "expired":
        return "the guardian decides only expiry; approvals and rejections come from people through the gateway"
    if event_type == "deployment.action" and service == "guardian" and str(_get(data, "action")) != "pause":
        return "the guardian only pauses (for a budget); other actions come from people through the gateway"
    if event_type == "deployment.action" and service == "executor":
        action, by = str(_get(data, "action")), str(_get(data, "requested_by") or "")
        if not (
            (action == "pause" and by.startswith(("idle:", "schedule:")))
            or (action == "restart" and by.startswith("schedule:"))
        ):
            return (
                "the executor only pauses an idle endpoint and pauses or restarts one on its schedule "
                "(requested by idle:... or schedule:...); other actions come from people through the gateway"
            )
    if event_type == "message.rejected" and _get(data, "service") != service:
        return f"{service} may record only its own rejections"
    return None


def _get(data: Any, name: str) -> Any:
    return data.get(name) if isinstance(data, Mapping) else getattr(data, name, None)


# ---- keys ----------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """A service's private key: signs event bytes (and, through nats-py, the server's nonce)."""

    def __init__(self, service: str, seed: str) -> None:
        import nacl.signing
        import nkeys

        self.service = service
        self.seed = seed.strip()
        try:
            prefix, raw = nkeys.decode_seed(bytearray(self.seed.encode()))
        except Exception:
            prefix, raw = None, b""
        if prefix != nkeys.PREFIX_BYTE_USER or len(raw) != 32:
            raise ValueError(f"the key for {service} is not a NATS user nkey seed (SU...)")
        # The nkey seed is the Ed25519 seed. libsodium (PyNaCl, which nkeys uses too) signs and
        # verifies about twice as fast as OpenSSL here (bench/signing.py).
        self._key = nacl.signing.SigningKey(bytes(raw))
        self.public_key: str = encode_public_key(bytes(self._key.verify_key))

    @classmethod
    def from_file(cls, service: str, path: Path) -> Signer:
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise StartupError(
                f"no identity for {service}: {path} is missing. `agentops up` creates identities on first start; "
                "elsewhere run `agentops nats config` and give each service its own seed (IDENTITY_DIR)"
            ) from None
        return cls(service, text)

    def sign(self, body: bytes) -> dict[str, str]:
        """The headers that prove this service published `body`."""
        return {SIGNER_HEADER: self.public_key, SIGNATURE_HEADER: _b64(self._key.sign(body).signature)}


@dataclass(frozen=True)
class Verdict:
    service: str | None
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class TrustedSigners:
    """The public keys each service signs with (old keys stay listed so old rows still verify)."""

    def __init__(self, keys: Mapping[str, list[str] | tuple[str, ...]]) -> None:
        import nacl.signing

        self.by_key: dict[str, str] = {}
        self._verifiers: dict[str, Any] = {}
        for service, publics in keys.items():
            for public in publics:
                self.by_key[public] = service
                self._verifiers[public] = nacl.signing.VerifyKey(decode_public_key(public))

    @classmethod
    def from_file(cls, path: Path) -> TrustedSigners:
        try:
            return cls.parse(path.read_text())
        except FileNotFoundError:
            raise StartupError(
                f"no trusted signers at {path}: `agentops up` writes it; elsewhere run `agentops nats config` "
                "and give every service the same signers.json (TRUSTED_SIGNERS_FILE)"
            ) from None

    @classmethod
    def parse(cls, text: str) -> TrustedSigners:
        raw = json.loads(text)
        keys = raw.get("keys", raw) if isinstance(raw, dict) else {}
        return cls({str(s): [k] if isinstance(k, str) else list(k) for s, k in keys.items()})

    def as_dict(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for public, service in self.by_key.items():
            out.setdefault(service, []).append(public)
        return out

    def check(self, body: bytes, signer: str | None, signature: str | None, event_type: str, data: Any) -> Verdict:
        """Who signed `body`, or why it must not be acted on."""
        if not signer or not signature:
            return Verdict(None, "unsigned: every event must carry its producer's signature")
        service = self.by_key.get(signer)
        if service is None:
            return Verdict(None, f"signed by an unknown key {signer[:12]}...")
        try:
            self._verifiers[signer].verify(body, _unb64(signature))
        except Exception:  # a bad signature, or one that is not even 64 bytes of base64
            return Verdict(service, f"the signature does not match the content (altered after {service} signed it)")
        return Verdict(service, may_produce(service, event_type, data))


def new_seed() -> str:
    """A fresh NATS user nkey seed (SU...)."""
    import os

    import nkeys

    return bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)).decode()


def encode_public_key(raw: bytes) -> str:
    import nkeys

    body = bytes([nkeys.PREFIX_BYTE_USER]) + raw
    return base64.b32encode(body + bytes(nkeys.crc16_checksum(body))).rstrip(b"=").decode()


def decode_public_key(public: str) -> bytes:
    import nkeys

    try:
        decoded = base64.b32decode(public + "=" * (-len(public) % 8))
        body, crc = decoded[:-2], decoded[-2:]
        ok = body[0] == nkeys.PREFIX_BYTE_USER and len(body) == 33 and bytes(nkeys.crc16_checksum(body)) == crc
    except Exception:
        ok = False
    if not ok:
        raise ValueError(f"{public[:12]}... is not a NATS user public key (U...)")
    return bytes(body[1:])


def header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    return value if isinstance(value, str) else None
