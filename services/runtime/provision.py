"""Preparing the servers before the services start: identities, database logins, schema, stream."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from services.runtime.dbroles import SERVICE_LOGIN, apply_roles, login_url, new_passwords
from services.runtime.secretfiles import write_private
from shared.db import run_migrations, with_login

DB_SERVICES = ("auditor", "gateway", "guardian")


def secrets_dir(home: Path) -> Path:
    folder = home / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return folder


def db_passwords(home: Path, given: Path | None = None) -> dict[str, str]:
    """The logins' passwords: DB_PASSWORDS_FILE when given (compose's secret), else generated once
    into AGENTOPS_HOME/secrets/db-passwords.json (0600)."""
    if given is not None:
        return dict(json.loads(given.read_text()))
    path = secrets_dir(home) / "db-passwords.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    passwords = new_passwords()
    write_private(path, json.dumps(passwords, indent=2))
    return passwords


def can_create_roles(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def database_logins(url: str, home: Path, passwords_file: Path | None = None) -> dict[str, str]:
    """Each service's (and the operator tools') own database URL; the schema brought up to date.

    `url` is a superuser's (the embedded cluster, or a server the operator lets us administer):
    the logins are created with generated passwords, then the owner migrates. Otherwise `url` is
    the owner's own login and the other logins exist already (`agentops db roles`)."""
    database = with_login(url).rsplit("/", 1)[1].split("?")[0]
    passwords: dict[str, str] = {}
    if can_create_roles(url):
        passwords = db_passwords(home, passwords_file)
        apply_roles(url, database, passwords)
        run_migrations(login_url(url, "owner", passwords))
    else:
        run_migrations(url)
        saved = home / "secrets" / "db-passwords.json"
        passwords = json.loads(saved.read_text()) if saved.exists() else {}
    return {who: login_url(url, who, passwords) for who in SERVICE_LOGIN}


def compose_secrets(folder: Path) -> list[Path]:
    """Everything docker-compose.yml mounts as secrets, made once (kept on later runs): one nkey
    seed per identity, the public signers.json, the nats-server authorization and cluster
    includes, the PostgreSQL superuser's and each login's password, the gateway's API keys file
    with a viewer key for Prometheus (metrics.key)."""
    import secrets as random

    from services.runtime.natsconf import auth_include, cluster_include, ensure_identities

    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    signers = ensure_identities(folder)
    made = [folder / "signers.json", *(folder / f"{name}.nk" for name in signers)]
    write_private(folder / "nats-auth.conf", auth_include(signers))
    route = folder / "nats-route.password"
    if not route.exists():
        write_private(route, random.token_hex(24))
    nodes = [f"nats-{i}" for i in (1, 2, 3)]
    write_private(folder / "nats-cluster.conf", cluster_include(route.read_text().strip(), nodes))
    superuser = folder / "postgres.password"
    if not superuser.exists():
        write_private(superuser, random.token_hex(24))
    passwords_file = folder / "db-passwords.json"
    if not passwords_file.exists():
        write_private(passwords_file, json.dumps(new_passwords(), indent=2))
    for role, password in json.loads(passwords_file.read_text()).items():
        write_private(folder / f"{role}.password", password)
        made.append(folder / f"{role}.password")
    made += [folder / "nats-auth.conf", folder / "nats-cluster.conf", superuser, passwords_file]
    # The gateway's API keys (hashes only; add more with API_KEYS_FILE=<this folder>/api-keys.json
    # agentops keys add ...: the gateway re-reads the file), starting with Prometheus's viewer key.
    keys, metrics_key = folder / "api-keys.json", folder / "metrics.key"
    if not metrics_key.exists():
        from services.gateway.auth import KeyFile, Role

        secret, _ = KeyFile(keys).create("prometheus", [Role.VIEWER])
        write_private(metrics_key, secret)
    made += [keys, metrics_key]
    # Compose bind-mounts each secret file into the container that needs it, and the image runs
    # as an unprivileged user that must read it: the files are 0644, the folder 0700 (only its
    # owner on this host can reach them).
    for path in made:
        path.chmod(0o644)
    return made
