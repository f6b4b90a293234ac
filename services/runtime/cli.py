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
from pathlib import Path
from typing import Any

from shared.settings import Settings


def main(argv: list[str] | None = None) -> int:
    from shared.errors import StartupError

    # platformdirs (through a dependency) warns on every start where XDG_RUNTIME_DIR is unset
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StartupError as exc:
        print(f"agentops: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if getattr(args, "func", None) is not _up or getattr(args, "verbose", False):
            raise
        # `up` on a machine we do not know: say what failed and where to look, not a traceback
        home = Settings().agentops_home.resolve()
        print(
            f"agentops up: {type(exc).__name__}: {exc}\n(the logs are in {home}; `agentops up --verbose` "
            "shows the traceback)",
            file=sys.stderr,
        )
        return 1


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
    up.add_argument("--verbose", action="store_true", help="every service's full log (LOG_LEVEL=debug)")
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

    keys_cmd = audit.add_parser("keys", help="the public keys each service signs events with (to verify an export)")
    keys_cmd.set_defaults(func=_audit_keys)

    status = sub.add_parser("status", help="is the system ready: broker, database, the audit log's lag")
    status.set_defaults(func=_status)

    nats_cmd = sub.add_parser("nats", help="NATS identities and server configuration").add_subparsers(
        required=True, metavar="ACTION"
    )
    conf = nats_cmd.add_parser(
        "config", help="create the identities (if missing) and write a nats-server configuration for them"
    )
    conf.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")
    conf.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    conf.add_argument("--port", type=int, default=4222)
    conf.add_argument("--store-dir", default="/data/jetstream")
    conf.add_argument("--server-name", default=None)
    conf.add_argument(
        "--route", action="append", default=[], help="a cluster route, e.g. nats-route://nats-2:6222 (repeat)"
    )
    conf.add_argument("--cluster-port", type=int, default=6222)
    conf.set_defaults(func=_nats_config)

    compose = sub.add_parser(
        "compose-secrets", help="make the secrets docker-compose.yml mounts (nkeys, passwords, NATS includes)"
    )
    compose.add_argument("folder", nargs="?", default="deploy/secrets")
    compose.set_defaults(func=_compose_secrets)

    db_cmd = sub.add_parser("db", help="database logins").add_subparsers(required=True, metavar="ACTION")
    roles = db_cmd.add_parser(
        "roles", help="print the SQL that creates each service's login (or --apply it as a superuser)"
    )
    roles.add_argument("--database", default="agentops")
    roles.add_argument(
        "--apply", metavar="ADMIN_URL", default=None, help="run it now, as this superuser (passwords generated, 0600)"
    )
    roles.set_defaults(func=_db_roles)

    events = sub.add_parser("events", help="the live event stream").add_subparsers(required=True, metavar="ACTION")
    tail = events.add_parser("tail", help="follow events as they happen (Ctrl-C stops)")
    tail.add_argument("--type", dest="type_pattern", default=">", help="e.g. 'deployment.*' (default: all)")
    tail.set_defaults(func=_tail)

    docs = sub.add_parser("docs", help="generated documents").add_subparsers(required=True, metavar="DOC")
    asyncapi = docs.add_parser("asyncapi", help="the AsyncAPI document of every subject and payload")
    asyncapi.add_argument("--output", "-o", default="-")
    asyncapi.set_defaults(func=_asyncapi)
    api_types = docs.add_parser("api-types", help="the dashboard's TypeScript types, from the gateway's OpenAPI")
    api_types.add_argument("--check", action="store_true", help="exit 1 if the file in the repo is stale")
    api_types.set_defaults(func=_api_types)

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

    slack = sub.add_parser("slack", help="who a Slack user is when they click Approve or Reject").add_subparsers(
        required=True, metavar="ACTION"
    )
    link = slack.add_parser("link", help="a Slack user acts as an AgentOps user (with that user's key roles)")
    link.add_argument("slack_user_id", help="e.g. U024BE7LH (Slack profile: Copy member ID)")
    link.add_argument("user_id", help="the AgentOps user, as in `agentops keys list`")
    link.set_defaults(func=_slack_link)
    unlink = slack.add_parser("unlink", help="a Slack user's clicks count for nobody again")
    unlink.add_argument("slack_user_id")
    unlink.set_defaults(func=_slack_unlink)
    slack.add_parser("list", help="the links").set_defaults(func=_slack_list)

    from services.runtime import client

    client.add_parsers(sub)

    parse = sub.add_parser("parse", help="print the structured intent of a command as JSON")
    parse.add_argument("command", nargs="*")
    parse.add_argument("--jsonl", action="store_true", help="read one command per line on stdin, write JSON lines")
    parse.set_defaults(func=_parse)
    return parser


def _up(args: argparse.Namespace) -> int:
    from services.runtime.supervisor import Supervisor

    if args.verbose:
        os.environ["LOG_LEVEL"] = "debug"
    return Supervisor(Settings(), port=args.port, sandbox=args.sandbox).run()


def _serve(args: argparse.Namespace) -> int:
    from services.runtime.serve import serve

    serve(args.service, Settings())
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    """The schema (as the owner, creating the logins first when DATABASE_URL may), and the stream
    when NATS_URL and the admin identity are at hand (compose's one-shot setup container)."""
    from services.runtime.provision import database_logins
    from shared.broker import ensure_stream, publish_signers
    from shared.errors import StartupError

    settings = Settings()
    with database_url(settings, "admin") as url:
        database_logins(url, settings.agentops_home.resolve(), settings.db_passwords_file)
    print("database schema is up to date")
    if settings.nats_url and settings.seed_path("admin").exists():

        async def stream() -> None:
            # a cluster that is still forming refuses a replicated stream for a few seconds
            for attempt in range(30):
                try:
                    await ensure_stream(settings.nats_url, settings)
                    await publish_signers(settings.nats_url, settings)
                    return
                except Exception as exc:
                    if attempt == 29:
                        raise StartupError(f"could not create the stream on {settings.nats_url}: {exc}") from exc
                    await asyncio.sleep(2)

        asyncio.run(stream())
        print(f"stream {settings.stream_name} and the signers bucket are up to date")
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
                anchors += asyncio.run(read_kv(settings, "cli", url))
        if not anchors:
            print("no anchors yet: run `agentops audit anchor` (the auditor also writes them on a schedule)")
    from shared.identity import TrustedSigners

    trusted = TrustedSigners.from_file(settings.signers_path)
    with database_url(settings) as url:
        verdict = asyncio.run(verify(url, since=args.since, until=args.until, anchors=anchors, trusted=trusted))
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
                url_nats = nats_url(settings)
                return dumps(await anchor_now(engine, settings.audit_anchor_path, settings, "cli", url_nats))
            finally:
                await engine.dispose()

        print(asyncio.run(run()))
    return 0


def _rebuild(_args: argparse.Namespace) -> int:
    from services.auditor.operations import rebuild
    from shared.db import make_engine

    with database_url(Settings(), "auditor") as url:

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
    from shared.events import canonical_json
    from shared.identity import SIGNATURE_HEADER, SIGNER_HEADER

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
                from shared.broker import connect
                from shared.events import replay_subject_for

                nc = await connect(settings, "cli", url_nats)
                js = nc.jetstream()
            count = 0
            try:
                async for row in select_events(engine, args.plan, args.since, args.until, args.type_pattern):
                    body = canonical_json(row["payload"])
                    if js is not None:
                        # the producer's own signature travels with it: subscribers verify a replay
                        # exactly as they verified the original
                        replay_id = f"replay:{row['event_id']}:{uuid.uuid4().hex}"
                        headers = {"Nats-Msg-Id": replay_id}
                        if row.get("signature"):
                            headers |= {SIGNER_HEADER: row["signer_key"], SIGNATURE_HEADER: row["signature"]}
                        await js.publish(replay_subject_for(row["type"]), body.encode(), headers=headers)
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

    from shared.broker import connect

    settings = Settings()
    url = nats_url(settings)
    if not url:
        print("agentops events tail: NATS_URL is not set and no `agentops up` is running", file=sys.stderr)
        return 2
    pattern = args.type_pattern.replace(".*", ".>").replace("*", ">")

    async def run() -> None:
        nc = await connect(settings, "cli", url)
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


def _api_types(args: argparse.Namespace) -> int:
    from services.runtime.apitypes import TARGET, generate, write

    if args.check:
        if TARGET.exists() and TARGET.read_text() == generate():
            return 0
        print(f"{TARGET} is stale: run `agentops docs api-types` and commit it", file=sys.stderr)
        return 1
    print(f"wrote {write()}")
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


def _audit_keys(_args: argparse.Namespace) -> int:
    """The trusted keys from TRUSTED_SIGNERS_FILE, or else from the `agentops-signers` bucket."""
    import json

    from shared.identity import SIGNERS_BUCKET, TrustedSigners

    settings = Settings()
    if settings.signers_path.exists():
        keys = TrustedSigners.from_file(settings.signers_path).as_dict()
    elif url := nats_url(settings):
        from shared.broker import connect

        async def fetch() -> dict[str, list[str]]:
            nc = await connect(settings, "cli", url)
            try:
                entry = await (await nc.jetstream().key_value(SIGNERS_BUCKET)).get("signers")
                return dict(json.loads(entry.value or b"{}")["keys"])
            finally:
                await nc.close()

        keys = asyncio.run(fetch())
    else:
        print(f"agentops audit keys: no {settings.signers_path} and no NATS to ask", file=sys.stderr)
        return 2
    print(json.dumps({"keys": keys}, indent=2))
    return 0


def _status(_args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.request

    from services.runtime.supervisor import runtime_urls

    settings = Settings()
    running = runtime_urls(settings.agentops_home)
    port = running["gateway_port"] if running else settings.gateway_port
    url = f"http://{settings.gateway_host}:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except OSError as exc:
        print(f"agentops status: no gateway answers at {url} ({exc}); is `agentops up` running?", file=sys.stderr)
        return 2
    print(f"{body.get('status', 'unknown')}: broker {body.get('broker')}, database {body.get('database')}")
    if audit := body.get("audit"):
        print(
            f"audit log: {audit['behind']} events behind the stream (last {audit['stream_last_seq']}, "
            f"audited {audit['audited_seq']}); oldest unaudited {audit['oldest_unaudited_seconds']} s"
        )
    for reason in body.get("reasons", []):
        print(f"  - {reason}")
    for service, where in sorted((running or {}).get("metrics", {}).items()):
        print(f"metrics: {service} {where}")
    return 0 if body.get("status") == "ready" else 1


def _nats_config(args: argparse.Namespace) -> int:
    from services.runtime.natsconf import ensure_identities, server_config

    settings = Settings()
    signers = ensure_identities(settings.identity_path)
    cluster = None
    if args.route:
        cluster = {"name": "agentops", "listen": f"0.0.0.0:{args.cluster_port}", "routes": args.route}
    text = server_config(
        signers,
        host=args.host,
        port=args.port,
        store_dir=args.store_dir,
        server_name=args.server_name,
        cluster=cluster,
    )
    if args.output == "-":
        print(text, end="")
    else:
        from services.runtime.secretfiles import write_private

        write_private(Path(args.output), text)
    print(
        f"identities in {settings.identity_path} (one seed per service, 0600; signers.json is public)", file=sys.stderr
    )
    return 0


def _compose_secrets(args: argparse.Namespace) -> int:
    from services.runtime.provision import compose_secrets

    made = compose_secrets(Path(args.folder))
    print(f"{len(made)} secrets in {args.folder} (0600; kept on later runs; never commit them)")
    return 0


def _db_roles(args: argparse.Namespace) -> int:
    from services.runtime.dbroles import apply_roles, roles_sql
    from services.runtime.provision import db_passwords

    if args.apply:
        home = Settings().agentops_home.resolve()
        apply_roles(args.apply, args.database, db_passwords(home))
        print(f"logins created or updated; their passwords are in {home / 'secrets' / 'db-passwords.json'} (0600)")
        return 0
    print("-- run as a superuser, once; then set each login's password (ALTER ROLE ... PASSWORD ...)")
    for statement in roles_sql(args.database):
        print(statement + ";")
    print("-- then `agentops migrate` with DATABASE_URL logging in as agentops_owner")
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


def _slack_link(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from services.gateway.auth import KeyFile, env_keys
    from services.gateway.slack import SlackLinks

    settings = Settings()
    known = {r.user_id for r in [*env_keys(settings.api_keys), *KeyFile(settings.api_keys_path).load()] if r.active}
    if args.user_id not in known:
        print(
            f"agentops slack link: {args.user_id!r} has no active API key (see `agentops keys list`)", file=sys.stderr
        )
        return 2
    try:
        made = SlackLinks(settings.slack_users_path).link(args.slack_user_id, args.user_id)
    except ValidationError:
        print(f"agentops slack link: {args.slack_user_id!r} is not a Slack user id like U024BE7LH", file=sys.stderr)
        return 2
    print(f"linked Slack user {made.slack_user_id} to {made.user_id}")
    return 0


def _slack_unlink(args: argparse.Namespace) -> int:
    from services.gateway.slack import SlackLinks

    if not SlackLinks(Settings().slack_users_path).unlink(args.slack_user_id):
        print(
            f"agentops slack unlink: {args.slack_user_id!r} is not linked (see `agentops slack list`)", file=sys.stderr
        )
        return 2
    print(f"unlinked Slack user {args.slack_user_id}")
    return 0


def _slack_list(_args: argparse.Namespace) -> int:
    import json

    from services.gateway.slack import SlackLinks

    for link in SlackLinks(Settings().slack_users_path).load():
        print(json.dumps(link.model_dump()))
    return 0


def _parse(args: argparse.Namespace) -> int:
    from services.planner.cli_parse import main as parse_main

    if not args.jsonl and not args.command:
        print("agentops parse: give a command, or --jsonl to read commands from stdin", file=sys.stderr)
        return 2
    return parse_main(args.command, args.jsonl)


@contextlib.contextmanager
def database_url(settings: Settings, login: str = "cli") -> Iterator[str]:
    """DATABASE_URL (the operator's own login), else the running `agentops up`'s login for this
    tool (`cli` reads; `auditor` rebuilds; `admin` sets up), else the embedded cluster started
    for this command."""
    if settings.database_url:
        yield settings.service_database_url
        return
    from services.runtime.supervisor import runtime_urls

    running = runtime_urls(settings.agentops_home)
    if running and login in running.get("database_urls", {}):
        yield running["database_urls"][login]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from services.runtime.dbroles import login_url
        from services.runtime.embedded import EmbeddedPostgres
        from services.runtime.provision import db_passwords
    home = settings.agentops_home.resolve()
    pg = EmbeddedPostgres(home / "postgres").start()
    try:
        yield pg.url() if login == "admin" else login_url(pg.url(), login, db_passwords(home))
    finally:
        pg.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
