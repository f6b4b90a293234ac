"""The `agentops` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

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
    up.add_argument(
        "--sandbox",
        action="store_true",
        help="start a local moto server and drive it through the real boto3 SageMaker calls (EXECUTOR_MODE=sandbox)",
    )
    up.set_defaults(func=_up)

    serve = sub.add_parser("serve", help="run one service in this process (needs NATS_URL and DATABASE_URL)")
    serve.add_argument("service", choices=["gateway", "planner", "guardian", "executor", "auditor", "notifier"])
    serve.set_defaults(func=_serve)

    migrate = sub.add_parser("migrate", help="bring the database schema to the newest version")
    migrate.set_defaults(func=_migrate)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(required=True, metavar="ACTION")
    verify = audit.add_parser("verify", help="walk the hash chain and report the first broken row, or OK")
    verify.add_argument("--since", type=int, default=0, help="start after this seq (its hash anchors the walk)")
    verify.add_argument("--until", type=int, default=None, help="stop at this seq")
    verify.add_argument(
        "--anchors", action="store_true", help="also check the anchors kept outside the table (file and KV)"
    )
    verify.set_defaults(func=_verify)
    anchor = audit.add_parser("anchor", help="write the chain's head (seq, hash) to the anchor file and KV bucket")
    anchor.set_defaults(func=_anchor)
    rebuild = audit.add_parser("rebuild", help="drop the projections and rebuild them from the log alone")
    rebuild.set_defaults(func=_rebuild)
    export = audit.add_parser("export", help="write the log with its hashes, for verification outside")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")
    export.set_defaults(func=_export)
    replay = audit.add_parser(
        "replay", help="print recorded events, or re-publish them to agentops.replay.<type> (no side effects)"
    )
    replay.add_argument("--plan", help="one plan's events")
    replay.add_argument("--since", type=_when, help="ISO time, e.g. 2026-11-24T10:00:00Z")
    replay.add_argument("--until", type=_when, help="ISO time")
    replay.add_argument("--type", dest="type_pattern", help="an event type, or a prefix like 'deployment.*'")
    replay.add_argument("--publish", action="store_true", help="re-publish to agentops.replay.<type>")
    replay.set_defaults(func=_replay)

    events = sub.add_parser("events", help="the live event stream").add_subparsers(required=True, metavar="ACTION")
    tail = events.add_parser("tail", help="follow events as they happen (Ctrl-C stops)")
    tail.add_argument("--type", dest="type_pattern", default=">", help="e.g. 'deployment.*' (default: all)")
    tail.set_defaults(func=_tail)

    docs = sub.add_parser("docs", help="generated documents").add_subparsers(required=True, metavar="DOC")
    asyncapi = docs.add_parser("asyncapi", help="the AsyncAPI document of every subject and payload")
    asyncapi.add_argument("--output", "-o", default="-")
    asyncapi.set_defaults(func=_asyncapi)

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

    return Supervisor(Settings(), port=args.port, sandbox=args.sandbox).run()


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
    from services.auditor.anchor import read_file, read_kv
    from services.auditor.verify import verify

    settings = Settings()
    anchors = None
    if args.anchors:
        anchors = read_file(settings.audit_anchor_path)
        if url := nats_url(settings):
            with contextlib.suppress(Exception):  # the file alone still counts when NATS is away
                anchors += asyncio.run(read_kv(url))
        if not anchors:
            print("no anchors yet: run `agentops audit anchor` (the auditor also writes them on a schedule)")
    with database_url(settings) as url:
        verdict = asyncio.run(verify(url, since=args.since, until=args.until, anchors=anchors))
    print(verdict.describe() + (f" (checked against {len(anchors)} anchors)" if anchors and verdict.ok else ""))
    return 0 if verdict.ok else 1


def _anchor(_args: argparse.Namespace) -> int:
    from services.auditor.anchor import anchor_now, dumps
    from shared.db import make_engine

    settings = Settings()
    with database_url(settings) as url:

        async def run() -> str:
            engine = make_engine(url)
            try:
                return dumps(await anchor_now(engine, settings.audit_anchor_path, nats_url(settings)))
            finally:
                await engine.dispose()

        print(asyncio.run(run()))
    return 0


def _rebuild(_args: argparse.Namespace) -> int:
    from services.auditor.operations import rebuild
    from shared.db import make_engine

    with database_url(Settings()) as url:

        async def run() -> int:
            engine = make_engine(url)
            try:
                return await rebuild(engine)
            finally:
                await engine.dispose()

        print(f"rebuilt deployments and approvals from {asyncio.run(run())} events")
    return 0


def _export(args: argparse.Namespace) -> int:
    from services.auditor.operations import csv_header, export_line, select_events
    from shared.db import make_engine

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        with database_url(Settings()) as url:

            async def run() -> None:
                engine = make_engine(url)
                try:
                    if args.format == "csv":
                        out.write(csv_header() + "\n")
                    async for row in select_events(engine):
                        out.write(export_line(row, args.format) + "\n")
                finally:
                    await engine.dispose()

            asyncio.run(run())
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO time like 2026-11-24T10:00:00Z") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _replay(args: argparse.Namespace) -> int:
    import json

    from services.auditor.operations import select_events
    from shared.db import make_engine

    if not (args.plan or args.since):
        print("agentops audit replay: give --plan ID or --since TIME", file=sys.stderr)
        return 2
    settings = Settings()
    url_nats = nats_url(settings) if args.publish else None
    if args.publish and not url_nats:
        print("agentops audit replay --publish: NATS_URL is not set and no `agentops up` is running", file=sys.stderr)
        return 2
    with database_url(settings) as url:

        async def run() -> int:
            engine = make_engine(url)
            js = None
            if url_nats:
                import nats

                nc = await nats.connect(url_nats.split(","))
                js = nc.jetstream()
            count = 0
            try:
                async for row in select_events(engine, args.plan, args.since, args.until, args.type_pattern):
                    body = json.dumps(row["payload"], ensure_ascii=False)
                    if js is not None:
                        replay_id = f"replay:{row['event_id']}:{uuid.uuid4().hex}"
                        await js.publish(
                            f"agentops.replay.{row['type']}", body.encode(), headers={"Nats-Msg-Id": replay_id}
                        )
                    else:
                        print(json.dumps({"seq": row["seq"], **row["payload"]}, ensure_ascii=False))
                    count += 1
            finally:
                await engine.dispose()
                if js is not None:
                    await nc.close()
            return count

        count = asyncio.run(run())
    if args.publish:
        print(f"re-published {count} events to agentops.replay.<type>")
    return 0


def _tail(args: argparse.Namespace) -> int:
    import json

    import nats

    url = nats_url(Settings())
    if not url:
        print("agentops events tail: NATS_URL is not set and no `agentops up` is running", file=sys.stderr)
        return 2
    pattern = args.type_pattern.replace(".*", ".>").replace("*", ">")

    async def run() -> None:
        nc = await nats.connect(url.split(","))
        done = asyncio.Event()

        async def show(msg: Any) -> None:
            try:
                event = json.loads(msg.data)
            except ValueError:
                event = {"undecodable": msg.data[:200].decode(errors="replace")}
            print(json.dumps({"subject": msg.subject, **event}, ensure_ascii=False), flush=True)

        await nc.subscribe(f"agentops.{pattern}", cb=show)
        print(f"following agentops.{pattern} (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            await done.wait()
        finally:
            await nc.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


def _asyncapi(args: argparse.Namespace) -> int:
    from services.runtime.asyncapi import document

    text = document()
    if args.output == "-":
        print(text)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    return 0


def nats_url(settings: Settings) -> str | None:
    """NATS_URL, else the running `agentops up`'s."""
    if settings.nats_url:
        return settings.nats_url
    from services.runtime.supervisor import runtime_urls

    running = runtime_urls(settings.agentops_home)
    return running["nats_url"] if running else None


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
