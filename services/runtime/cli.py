"""The `agentops` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

from shared.settings import Settings


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.func(args) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentops", description="Deploy models to SageMaker from plain commands, safely."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up", help="run the whole system (embedded NATS and PostgreSQL unless NATS_URL/DATABASE_URL are set)"
    )
    up.add_argument(
        "--port", type=int, default=None, help="gateway port (default GATEWAY_PORT or 8000; 0 picks a free one)"
    )
    up.set_defaults(func=_up)

    serve = sub.add_parser("serve", help="run one service in this process (needs NATS_URL and DATABASE_URL)")
    serve.add_argument("service", choices=["gateway", "planner", "guardian", "executor", "auditor"])
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema to the newest version")
    migrate.set_defaults(func=_migrate)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(required=True, metavar="ACTION")
    verify = audit.add_parser("verify", help="walk the hash chain and report the first broken row, or OK")
    verify.add_argument("--since", type=int, default=0, help="start after this seq (its hash anchors the walk)")
    verify.add_argument("--until", type=int, default=None, help="stop at this seq")
    verify.set_defaults(func=_verify)

    keys = sub.add_parser("keys", help="API keys (stored hashed in API_KEYS_FILE)").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", help="make a key for a user; the secret is printed once")
    create.add_argument("--user", required=True, help="the user id the key acts as")
    create.add_argument(
        "--role",
        action="append",
        required=True,
        choices=["viewer", "deployer", "approver", "admin"],
        help="repeat for several roles",
    )
    create.set_defaults(func=_keys_create)
    keys.add_parser("list", help="list keys (never their secrets)").set_defaults(func=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its id; takes effect without a restart")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_keys_revoke)

    parse = sub.add_parser("parse", help="print the structured intent of a command as JSON")
    parse.add_argument("command", nargs="*")
    parse.add_argument("--jsonl", action="store_true", help="read one command per line on stdin, write JSON lines")
    parse.set_defaults(func=_parse)
    return parser


def _up(args: argparse.Namespace) -> int:
    from services.runtime.supervisor import Supervisor

    return Supervisor(Settings(), port=args.port).run()


def _serve(args: argparse.Namespace) -> int:
    from services.runtime.serve import serve

    serve(args.service, Settings())
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    from shared.db import run_migrations

    with database_url(Settings()) as url:
        run_migrations(url)
    print("database schema is up to date")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from services.auditor.verify import verify

    with database_url(Settings()) as url:
        verdict = asyncio.run(verify(url, since=args.since, until=args.until))
    print(verdict.describe())
    return 0 if verdict.ok else 1


def _keys_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.gateway.auth import KeyFile, Role

    settings = Settings()
    try:
        secret, record = KeyFile(settings.api_keys_path).create(args.user, [Role(r) for r in dict.fromkeys(args.role)])
    except ValidationError as exc:
        print(f"agentops keys create: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    print(f"created key {record.id} for {record.user_id} ({', '.join(args.role)}); it is shown only now:")
    print(secret)
    return 0


def _keys_list(_args: argparse.Namespace) -> int:
    import json

    from services.gateway.auth import KeyFile, describe, env_keys

    settings = Settings()
    for record in [*env_keys(settings.api_keys), *KeyFile(settings.api_keys_path).load()]:
        print(json.dumps(describe(record)))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from services.gateway.auth import KeyFile

    try:
        record = KeyFile(Settings().api_keys_path).revoke(args.key_id)
    except KeyError:
        print(
            f"agentops keys revoke: no key {args.key_id!r} in the keys file (see `agentops keys list`)", file=sys.stderr
        )
        return 2
    print(f"revoked {record.id} ({record.user_id})")
    return 0


def _parse(args: argparse.Namespace) -> int:
    from services.planner.cli_parse import main as parse_main

    if not args.jsonl and not args.command:
        print("agentops parse: give a command, or --jsonl to read commands from stdin", file=sys.stderr)
        return 2
    return parse_main(args.command, args.jsonl)


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, else the running `agentops up`, else the embedded cluster started for this command."""
    if settings.database_url:
        yield settings.database_url
        return
    from services.runtime.supervisor import runtime_urls

    running = runtime_urls(settings.agentops_home)
    if running:
        yield running["database_url"]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from services.runtime.embedded import EmbeddedPostgres
    pg = EmbeddedPostgres(settings.agentops_home.resolve() / "postgres").start()
    try:
        yield pg.url()
    finally:
        pg.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
