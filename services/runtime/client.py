"""The REST API from a terminal: `agentops do | ls | show | approvals | approve | reject | pause |
restart | delete | scale | update | rollback | budgets | schedules | login`.

Where it talks to: AGENTOPS_URL and AGENTOPS_API_KEY, else what `agentops login` stored (0600), else
the local `agentops up` of AGENTOPS_HOME (its gateway port and admin key). Exit codes: 0 done (a
deployment deployed or waiting for approval), 1 refused or failed, 2 usage or connection errors.
Every read takes `--json` for scripts; an error prints the API's own message, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from shared.settings import Settings

OK, REFUSED, USAGE = 0, 1, 2
# Where a plan ends up, for `do --wait`: what counts as done, and what as refused or failed.
SETTLED = {"deployed": OK, "pending_approval": OK, "paused": OK, "deleted": OK}
FAILED = {"failed": REFUSED, "validation_failed": REFUSED, "rejected": REFUSED}

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Stop(Exception):
    """End the command with this message and exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Credentials:
    url: str
    key: str
    source: str


def credentials_file() -> Path:
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "agentops" / "credentials.json"


def credentials() -> Credentials:
    url, key = os.environ.get("AGENTOPS_URL"), os.environ.get("AGENTOPS_API_KEY")
    if url and key:
        return Credentials(url.rstrip("/"), key, "AGENTOPS_URL and AGENTOPS_API_KEY")
    stored = credentials_file()
    if stored.exists():
        try:
            saved = json.loads(stored.read_text())
            return Credentials(str(saved["url"]).rstrip("/"), str(saved["key"]), str(stored))
        except (ValueError, KeyError, TypeError):
            raise Stop(f"{stored} is not what `agentops login` writes: run `agentops login URL` again") from None
    settings = Settings()
    home = settings.agentops_home.resolve()
    runtime, admin = home / "runtime.json", home / "admin-key"
    if runtime.exists() and admin.exists():
        port = json.loads(runtime.read_text()).get("gateway_port")
        return Credentials(f"http://127.0.0.1:{port}", admin.read_text().strip(), f"the local system in {home}")
    raise Stop(
        "no gateway to talk to: set AGENTOPS_URL and AGENTOPS_API_KEY, run `agentops login URL`, "
        "or start the local system with `agentops up`"
    )


class Api:
    def __init__(self, creds: Credentials, timeout: float = 30.0) -> None:
        self.creds = creds
        self.http = httpx.Client(base_url=creds.url, timeout=timeout, headers={"Authorization": f"Bearer {creds.key}"})

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        try:
            response = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise Stop(f"cannot reach the gateway at {self.creds.url} ({type(exc).__name__}): is it running?") from None
        if response.status_code >= 400 and response.status_code not in ok:
            raise Stop(f"{response.status_code}: {message(response)}", REFUSED if response.status_code < 500 else USAGE)
        return response.json() if response.content else None

    def events(self, plan_id: str, timeout: float) -> Iterator[dict[str, Any]]:
        """One plan's events as the gateway streams them (SSE), from its first."""
        deadline = time.monotonic() + timeout
        try:
            with self.http.stream("GET", f"/api/events/{plan_id}", timeout=httpx.Timeout(20.0, read=20.0)) as stream:
                if stream.status_code >= 400:
                    stream.read()
                    raise Stop(f"{stream.status_code}: {message(stream)}")
                block: dict[str, str] = {}
                for line in stream.iter_lines():
                    if time.monotonic() > deadline:
                        raise Stop(f"gave up waiting after {timeout:g} s: `agentops show {plan_id[:8]}` to look later")
                    if line == "":
                        if "data" in block and "id" in block:
                            yield json.loads(block["data"])
                        block = {}
                    elif not line.startswith(":") and ":" in line:
                        name, _, value = line.partition(":")
                        block[name] = value.strip()
        except httpx.HTTPError as exc:
            raise Stop(f"the event stream from {self.creds.url} broke off ({type(exc).__name__})") from None


def message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:300] or "no answer"
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []) if p != 'body')}: {d.get('msg')}" for d in detail)
    return json.dumps(detail)


def resolve(api: Api, ref: str) -> dict[str, Any]:
    """A plan by its id, a unique prefix of it, or its endpoint's name."""
    listed = api.call("GET", "/api/deployments?limit=500")["deployments"]
    exact = [p for p in listed if p["plan_id"] == ref or (p.get("artifact") or {}).get("endpoint_name") == ref]
    found = exact or [p for p in listed if p["plan_id"].startswith(ref)]
    if not found:
        detail = api.call("GET", f"/api/deployments/{ref}", ok=(404,))
        if detail and "plan" in detail:
            return dict(detail["plan"])
        raise Stop(f"no plan matches {ref!r}: `agentops ls` lists them")
    if len(found) > 1:
        ids = ", ".join(p["plan_id"][:12] for p in found[:5])
        raise Stop(f"{ref!r} matches {len(found)} plans ({ids}): give more of the id")
    return dict(found[0])


# ---- verbs -----------------------------------------------------------------------------------


def do(args: argparse.Namespace, api: Api) -> int:
    body: dict[str, Any] = {"command": args.command}
    if args.env:
        body["env"] = args.env
    answer = api.call("POST", "/api/agent/command", body, ok=(422,))
    if answer is None or "detail" in answer:
        raise Stop(f"refused: {answer.get('detail') if answer else 'no answer'}", REFUSED)
    plan_id = answer["plan_id"]
    if args.json and not args.wait:
        out.print_json(data=answer)
        return REFUSED if answer["status"] == "validation_failed" else OK
    if answer["status"] == "validation_failed":
        err.print(f"[red]refused[/]: {answer.get('error') or answer['message']}")
        for problem in answer.get("validation_errors", []):
            err.print(f"  - {problem}")
        return REFUSED
    summary(api, plan_id, answer)
    if not args.wait:
        return OK
    return follow(api, plan_id, args.timeout, args.json)


def summary(api: Api, plan_id: str, answer: dict[str, Any]) -> None:
    detail = api.call("GET", f"/api/deployments/{plan_id}", ok=(404,)) or {}
    plan = detail.get("plan") or answer.get("plan") or {}
    details = plan.get("details") or {}
    config = plan.get("artifact") or (answer.get("result") or {}).get("artifact") or {}
    out.print(f"[bold]{plan_id}[/]  {answer['message']}")
    if config:
        cost = details.get("estimated_usd_per_hour")
        out.print(
            f"  model {config['model_name']} on {config['instance_count']} x {config['instance_type']}"
            + (f", ${cost:.2f}/h" if cost is not None else "")
            + f" (budget ${config['budget_usd_per_hour']:g}/h) -> {config['endpoint_name']}"
        )
    for finding in details.get("findings", []):
        out.print(f"  {finding.get('severity', 'error')}: {finding['message']}")


def follow(api: Api, plan_id: str, timeout: float, as_json: bool) -> int:
    with err.status(f"following {plan_id[:8]}…", spinner="dots") as spinner:
        for event in api.events(plan_id, timeout):
            status = status_of(event)
            if as_json:
                out.print_json(data=event)
            else:
                out.print(f"  {event['occurred_at'][11:19]}  {describe(event)}")
            if status:
                spinner.update(f"{plan_id[:8]}: {status}…")
            if status in SETTLED or status in FAILED:
                code = SETTLED.get(status, FAILED.get(status, OK))
                if not as_json:
                    out.print(f"[{'green' if code == OK else 'red'}]{status}[/]")
                return code
    raise Stop("the event stream ended before the plan settled")


def status_of(event: dict[str, Any]) -> str | None:
    """The plan's status after an event (only the events that end a command's journey)."""
    data, kind = event.get("data", {}), event.get("type")
    if kind == "deployment.status":
        return str(data.get("status"))
    if kind == "approval.requested" and data.get("operation", "deploy") == "deploy":
        return "pending_approval"
    if kind in ("plan.failed",) or (kind == "plan.rejected" and data.get("operation") in ("deploy", "approve")):
        return "validation_failed"
    if kind == "approval.decided" and data.get("decision") in ("rejected", "expired"):
        return "rejected"
    return None


def describe(event: dict[str, Any]) -> str:
    data, kind = event.get("data", {}), event["type"]
    if kind == "deployment.status":
        return f"{data.get('status')}" + (f": {data['reason']}" if data.get("reason") else "")
    if kind == "plan.failed":
        return f"planning failed: {data.get('reason')}"
    if kind == "plan.rejected":
        return "refused: " + "; ".join(e["message"] for e in data.get("errors", []))
    if kind == "approval.decided":
        return f"{data.get('decision')} by {data.get('approver')}"
    return str(kind)


def ls(args: argparse.Namespace, api: Api) -> int:
    listed = api.call("GET", "/api/deployments?limit=500")
    if args.json:
        out.print_json(data=listed)
        return OK
    table = Table("plan", "endpoint", "env", "instance", "status", "created", box=None, header_style="bold")
    for p in listed["deployments"]:
        config = p.get("artifact") or {}
        instance = f"{config['instance_count']} x {config['instance_type']}" if config else "-"
        status = p["status"] + (f" ({p['reason']})" if p.get("reason") else "")
        endpoint = config.get("endpoint_name", "-")
        table.add_row(p["plan_id"][:8], endpoint, p["env"], instance, status, p["created_at"][:16])
    out.print(table)
    out.print(f"{listed['count']} plans")
    return OK


def show(args: argparse.Namespace, api: Api) -> int:
    plan_id = resolve(api, args.plan)["plan_id"]
    detail = api.call("GET", f"/api/deployments/{plan_id}")
    history = api.call("GET", f"/api/deployments/{plan_id}/history")
    cost = api.call("GET", f"/api/deployments/{plan_id}/cost")
    if args.json:
        out.print_json(data={"detail": detail, "history": history, "cost": cost})
        return OK
    plan, details = detail["plan"], detail["plan"]["details"]
    out.print(f"[bold]{plan['plan_id']}[/]  {plan['status']}  {plan['env']}  by {plan['user_id']}")
    out.print(f"  intent: {plan['intent']}")
    if details.get("reason"):
        out.print(f"  [red]reason[/]: {details['reason']}")
    for error in plan.get("validation_errors", []):
        out.print(f"  [red]refused[/]: {error}")
    if plan.get("artifact"):
        out.print_json(data=plan["artifact"])
    for finding in details.get("findings", []):
        out.print(f"  {finding['severity']}: {finding['message']}")
    for item in plan.get("evidence", []):
        out.print(f"  evidence: {item['title']} ({item['url']})")
    out.print(f"  cost so far ${cost['usd']:.4f}; now ${cost['usd_per_hour']:.2f}/h")
    for event in history:
        out.print(f"  {event['occurred_at'][:19]}  {event['actor']:<10} {describe(event)}")
    return OK


def approvals(args: argparse.Namespace, api: Api) -> int:
    waiting = api.call("GET", "/approvals")
    if args.json:
        out.print_json(data=waiting)
        return OK
    table = Table("plan", "endpoint", "env", "$/h", "needs", "requested by", "expires", box=None, header_style="bold")
    for a in waiting:
        needs = f"{len(a['approvers'])}/{a['approvals_required']}"
        table.add_row(
            a["plan_id"][:8],
            a["artifact"]["endpoint_name"],
            a["env"],
            f"{a['estimated_usd_per_hour']:.2f}",
            needs,
            a["requested_by"],
            a["expires_at"][:16],
        )
    out.print(table)
    out.print(f"{len(waiting)} waiting")
    return OK


def decide(args: argparse.Namespace, api: Api) -> int:
    verb = "approve" if args.verb == "approve" else "reject"
    if verb == "reject" and not (args.reason or "").strip():
        raise Stop("give a reason for the rejection (--reason): the requester reads it in the audit log")
    waiting = {a["plan_id"]: a for a in api.call("GET", "/approvals")}
    ids = [p for p in waiting if p == args.plan or p.startswith(args.plan)]
    ids += [p for p, a in waiting.items() if a["artifact"]["endpoint_name"] == args.plan and p not in ids]
    plan_id = ids[0] if len(ids) == 1 else resolve(api, args.plan)["plan_id"]
    body: dict[str, Any] = {"reason": args.reason or ""}
    if plan_id in waiting:
        body["plan_hash"] = waiting[plan_id]["plan_hash"]  # what you saw is what you decide on
    answer = api.call("POST", f"/approvals/{plan_id}/{verb}", body)
    out.print(answer["message"])
    return OK


def act(args: argparse.Namespace, api: Api) -> int:
    plan_id = resolve(api, args.plan)["plan_id"]
    if args.verb == "scale":
        answer = api.call("POST", f"/api/deployments/{plan_id}/scale", {"instance_count": args.count})
    elif args.verb == "delete":
        answer = api.call("DELETE", f"/api/deployments/{plan_id}")
    elif args.verb in ("update", "rollback"):
        strategy = {
            k: v
            for k, v in (("shift", args.shift), ("percent", args.percent), ("wait_seconds", args.bake))
            if v is not None
        }
        body: dict[str, Any] = {"strategy": strategy} if strategy else {}
        if args.verb == "update":
            body |= {
                k: v
                for k, v in (
                    ("model_id", args.model),
                    ("instance_type", args.instance_type),
                    ("instance_count", args.count),
                )
                if v is not None
            }
        answer = api.call("POST", f"/api/deployments/{plan_id}/{args.verb}", body)
    else:
        answer = api.call("POST", f"/api/deployments/{plan_id}/{args.verb}")
    if args.json:
        out.print_json(data=answer)
    else:
        out.print(answer["message"])
    return OK


def budgets(args: argparse.Namespace, api: Api) -> int:
    """`budgets list | set SCOPE USD [--threshold PCT[:actual|forecast][:notify|block|pause]]... | remove SCOPE`."""
    if args.budget_verb == "list":
        listed = api.call("GET", "/api/budgets")
        if args.json:
            out.print_json(data=listed)
            return OK
        table = Table("scope", "budget/month", "spent", "forecast", "past")
        for b in listed:
            past = ", ".join(f"{t['percent']:g}% {t['basis']} {t['action']}" for t in b["crossed"]) or "-"
            table.add_row(
                b["scope"], f"${b['monthly_usd']:,.2f}", f"${b['spend_usd']:,.2f}", f"${b['forecast_usd']:,.2f}", past
            )
        out.print(table)
        return OK
    if args.budget_verb == "remove":
        answer = api.call("DELETE", f"/api/budgets/{args.scope}")
    else:
        body: dict[str, Any] = {"monthly_usd": args.usd}
        if args.threshold:
            body["thresholds"] = [threshold_of(t) for t in args.threshold]
        answer = api.call("PUT", f"/api/budgets/{args.scope}", body)
    out.print_json(data=answer) if args.json else out.print(answer["message"])
    return OK


def schedules(args: argparse.Namespace, api: Api) -> int:
    """`schedules list | set PLAN [--days D --start HH:MM --stop HH:MM --tz Z] [--idle-minutes N] | remove PLAN`."""
    if args.schedule_verb == "list":
        listed = api.call("GET", "/api/schedules")
        if args.json:
            out.print_json(data=listed)
            return OK
        table = Table("endpoint", "plan", "status", "runs", "idle pause", "next", "set by")
        for s in listed:
            w = s["schedule"]
            runs = f"{w['days']} {w['start']}-{w['stop']} {w['timezone']}" if w else "-"
            idle = f"{s['idle_pause_minutes']} min" if s["idle_pause_minutes"] else "-"
            nxt = f"{s['next']['action']} {s['next']['at']}" if s["next"] else "-"
            by = s["set_by"] or ("plan" if s["source"] == "plan" else "-")
            table.add_row(s["endpoint_name"] or "-", s["plan_id"][:8], s["status"], runs, idle, nxt, by)
        out.print(table)
        return OK
    plan = resolve(api, args.plan)["plan_id"]
    if args.schedule_verb == "remove":
        answer = api.call("DELETE", f"/api/deployments/{plan}/schedule")
    else:
        window = (args.start, args.stop)
        if any(window) and not all(window):
            raise Stop("a schedule needs both --start and --stop (HH:MM)")
        if not any(window) and args.idle_minutes is None:
            raise Stop(
                "say a running window (--start HH:MM --stop HH:MM [--days mon-fri --tz UTC]), --idle-minutes N, or both"
            )
        body: dict[str, Any] = {"idle_pause_minutes": args.idle_minutes}
        if all(window):
            body["schedule"] = {"days": args.days, "start": args.start, "stop": args.stop, "timezone": args.tz}
        answer = api.call("PUT", f"/api/deployments/{plan}/schedule", body)
    out.print_json(data=answer) if args.json else out.print(answer["message"])
    return OK


def threshold_of(text: str) -> dict[str, Any]:
    """ "80", "80:forecast", "100:block", "90:forecast:pause"."""
    percent, *rest = text.split(":")
    try:
        found: dict[str, Any] = {"percent": float(percent.rstrip("%"))}
    except ValueError:
        raise Stop(f"threshold {text!r}: start with a percent, e.g. 80 or 100:block") from None
    for word in rest:
        if word in ("actual", "forecast"):
            found["basis"] = word
        elif word in ("notify", "block", "pause"):
            found["action"] = word
        else:
            raise Stop(f"threshold {text!r}: {word!r} is neither actual/forecast nor notify/block/pause")
    return found


def login(args: argparse.Namespace) -> int:
    key = args.key or os.environ.get("AGENTOPS_API_KEY") or getpass.getpass("API key: ")
    creds = Credentials(args.url.rstrip("/"), key.strip(), "login")
    me = Api(creds).call("GET", "/api/me")
    from services.runtime.secretfiles import write_private

    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps({"url": creds.url, "key": creds.key}))
    out.print(f"signed in to {creds.url} as {me['user_id']} ({', '.join(me['roles'])}); saved in {path}")
    return OK


def run(args: argparse.Namespace) -> int:
    """Run a client verb; any foreseeable failure is one line on stderr and exit code 2 (or 1)."""
    try:
        if args.verb == "login":
            return login(args)
        api = Api(credentials())
        return int(VERBS[args.verb](args, api))
    except Stop as stop:
        err.print(f"agentops {args.verb}: {stop}", markup=False)
        return stop.code
    except KeyboardInterrupt:
        return USAGE


VERBS = {
    "do": do,
    "ls": ls,
    "show": show,
    "approvals": approvals,
    "approve": decide,
    "reject": decide,
    "pause": act,
    "restart": act,
    "delete": act,
    "scale": act,
    "update": act,
    "rollback": act,
    "budgets": budgets,
    "schedules": schedules,
}


def add_parsers(sub: Any) -> None:
    """The client verbs, added to the `agentops` command."""

    def verb(name: str, help: str, json_flag: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
        if json_flag:
            parser.add_argument("--json", action="store_true", help="print the API's JSON")
        parser.set_defaults(func=run, verb=name)
        return parser

    do_ = verb("do", "send a command: plan, guard and (staging, dev) deploy it")
    do_.add_argument("command", help='e.g. "deploy llama-3.1 8B for chatbot-x"')
    do_.add_argument("--env", choices=["staging", "prod", "dev"])
    do_.add_argument("--wait", action="store_true", help="follow the plan live to where it settles")
    do_.add_argument("--timeout", type=float, default=900.0, help="seconds to follow it (default 900)")
    verb("ls", "list the deployment plans")
    show_ = verb("show", "a plan: config, findings, evidence, history, cost")
    show_.add_argument("plan", help="its id, a unique prefix of it, or its endpoint name")
    verb("approvals", "requests waiting for approvers")
    approve = verb("approve", "approve a waiting request", json_flag=False)
    approve.add_argument("plan")
    approve.add_argument("--reason", default="")
    reject = verb("reject", "reject a waiting request (with a reason)", json_flag=False)
    reject.add_argument("plan")
    reject.add_argument("--reason", required=False)
    for name, help in (("pause", "pause a deployment"), ("restart", "restart it"), ("delete", "delete it")):
        verb(name, help).add_argument("plan")
    scale = verb("scale", "change the instance count (checked like a new plan)")
    scale.add_argument("plan")
    scale.add_argument("count", type=int)
    update = verb("update", "change a live endpoint's model, type or count (blue/green, checked like a new plan)")
    update.add_argument("plan")
    update.add_argument("--model", help="a catalog model id or a Hugging Face id (org/name)")
    update.add_argument("--instance-type", help="e.g. ml.g6e.xlarge")
    update.add_argument("--count", type=int, help="instances")
    rollback = verb("rollback", "return a live endpoint to the configuration its last update replaced")
    rollback.add_argument("plan")
    for parser in (update, rollback):
        parser.add_argument("--shift", choices=["all_at_once", "canary", "linear"], help="default: UPDATE_STRATEGY")
        parser.add_argument("--percent", type=int, help="canary size or linear step, % of capacity")
        parser.add_argument("--bake", type=int, help="seconds each step is watched by the alarms")
    budgets_ = verb("budgets", "monthly budgets per env and app: list, set, remove")
    budget_sub = budgets_.add_subparsers(dest="budget_verb", required=True, metavar="ACTION")
    budget_sub.add_parser("list", help="each budget with its spend, forecast and the thresholds it is past")
    set_ = budget_sub.add_parser("set", help="set or change a budget (admin)")
    set_.add_argument("scope", help="env:prod, env:staging, env:dev or app:<app>")
    set_.add_argument("usd", type=float, help="USD a month")
    set_.add_argument(
        "--threshold",
        action="append",
        help="PCT[:actual|forecast][:notify|block|pause], repeat (default 50, 80:forecast, 100:block)",
    )
    remove = budget_sub.add_parser("remove", help="remove a budget (admin)")
    remove.add_argument("scope")
    schedules_ = verb("schedules", "when deployments run: a weekly window and an idle pause; list, set, remove")
    schedule_sub = schedules_.add_subparsers(dest="schedule_verb", required=True, metavar="ACTION")
    schedule_sub.add_parser("list", help="every deployment with a schedule or an idle rule, and its next transition")
    set_s = schedule_sub.add_parser("set", help="set when a deployment runs (replaces what was set)")
    set_s.add_argument("plan", help="its id, a unique prefix of it, or its endpoint name")
    set_s.add_argument("--days", default="mon-fri", help="cron-like: mon-fri, sat,sun, 1-5, * (default mon-fri)")
    set_s.add_argument("--start", help="HH:MM: restarted then")
    set_s.add_argument("--stop", help="HH:MM: paused then (earlier than --start: the next day)")
    set_s.add_argument("--tz", default="UTC", help="an IANA time zone (default UTC)")
    set_s.add_argument("--idle-minutes", type=float, help="pause after this many minutes without invocations")
    remove_s = schedule_sub.add_parser("remove", help="no schedule and no idle pause from now")
    remove_s.add_argument("plan")
    login_ = verb("login", "store a gateway URL and API key (0600) for the verbs above", json_flag=False)
    login_.add_argument("url")
    login_.add_argument("--key", help="the API key (default: AGENTOPS_API_KEY, else asked)")
