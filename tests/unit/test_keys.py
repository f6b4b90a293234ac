"""API keys: hashed at rest, roles, revocation without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from services.gateway.auth import KeyFile, KeyStore, Role, hash_key
from shared.settings import Settings


def test_keys_are_stored_hashed_and_privately(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path / "keys.json")
    secret, record = keys.create("alice", [Role.DEPLOYER])
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text and hash_key(secret) in text
    assert oct((tmp_path / "keys.json").stat().st_mode & 0o777) == "0o600"
    assert record.user_id == "alice" and record.roles == [Role.DEPLOYER]


def test_revocation_is_seen_without_a_restart(tmp_path: Path) -> None:
    settings = Settings(api_keys_file=tmp_path / "keys.json")
    keys = KeyFile(settings.api_keys_path)
    secret, record = keys.create("bob", [Role.APPROVER])
    store = KeyStore(settings)
    who = store.authenticate(secret)
    assert who is not None and who.user_id == "bob" and who.has(Role.APPROVER) and who.has(Role.VIEWER)
    assert not who.has(Role.DEPLOYER)
    keys.revoke(record.id)
    assert store.authenticate(secret) is None
    assert store.authenticate("aok_not-a-key") is None


def test_environment_keys_carry_only_hashes(tmp_path: Path) -> None:
    raw = json.dumps([{"user_id": "ci", "roles": ["viewer"], "key_sha256": hash_key("aok_ci_secret")}])
    store = KeyStore(Settings(api_keys=raw, api_keys_file=tmp_path / "none.json"))
    who = store.authenticate("aok_ci_secret")
    assert who is not None and who.user_id == "ci" and not who.has(Role.DEPLOYER)


def test_keys_command_creates_lists_and_revokes(tmp_path: Path) -> None:
    env = dict(os.environ, API_KEYS_FILE=str(tmp_path / "k.json"), AGENTOPS_HOME=str(tmp_path))

    def agentops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.runtime.cli", *args], env=env, capture_output=True, text=True, timeout=60
        )

    made = agentops("keys", "create", "--user", "carol", "--role", "approver", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("aok_")
    listed = [json.loads(line) for line in agentops("keys", "list").stdout.splitlines()]
    assert [(k["user_id"], k["roles"], k["revoked_at"]) for k in listed] == [("carol", ["approver", "viewer"], None)]
    assert secret not in agentops("keys", "list").stdout
    assert agentops("keys", "revoke", listed[0]["id"]).returncode == 0
    assert json.loads(agentops("keys", "list").stdout)["revoked_at"] is not None
    bad = agentops("keys", "revoke", "k_missing")
    assert bad.returncode == 2 and "no key" in bad.stderr
    bad_user = agentops("keys", "create", "--user", "a b", "--role", "viewer")
    assert bad_user.returncode == 2
