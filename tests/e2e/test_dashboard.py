"""The seed's user flows, done in a real browser the way a person does them.

Flow 1: deploy to staging from the command bar (suggestions, keyboard, success box, live table).
Flow 2: a production deploy waits for approval; an approver approves it in the approvals panel.
Flow 3: view a deployment's details (config, findings, evidence, SageMaker calls, timeline, cost).
Flow 4: pause and restart a deployment from its actions menu.
Flow 5: delete a deployment through the confirmation dialog (and a failed delete keeps it open).
Flow 6: a command that fails its guardrails shows the reasons and deploys nothing.
Flow 7: the overview: system status from /readyz, KPI cards that follow what happens.
Plus: rejection with a reason, dark mode across reloads without a flash, sign-in, a viewer's view.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from services.runtime.supervisor import runtime_urls
from shared.broker import connect
from shared.events import DeploymentStatus, DeploymentStatusData
from shared.identity import Signer
from shared.settings import Settings
from tests.e2e.conftest import Browsing
from tests.keys import secret


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def api(ui: Browsing, method: str, path: str, user: str, body: dict | None = None) -> dict:  # type: ignore[type-arg]
    request = urllib.request.Request(
        ui.running.base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {secret(user)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def send(page: Page, command: str, env: str = "staging") -> None:
    page.get_by_label("Env").select_option(env)
    box = page.get_by_role("combobox", name="Command")
    box.fill(command)
    box.press("Escape")
    page.get_by_role("button", name="Send").click()


def row(page: Page, endpoint: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-endpoint="{endpoint}"]').first


def action(page: Page, endpoint: str, name: str) -> None:
    page.get_by_role("button", name=f"Actions for {endpoint}").first.click()
    page.get_by_role("menuitem", name=name).click()


def test_flow1_staging_deploy_from_the_command_bar(ui: Browsing) -> None:
    page = ui.open("alice")
    app = unique("chat")
    box = page.get_by_role("combobox", name="Command")
    box.click()
    box.type("nemotron")
    options = page.get_by_role("listbox", name="Command suggestions").get_by_role("option")
    expect(options.first).to_be_visible()
    for text in options.all_inner_texts():
        assert "nemotron" in text.lower()
    box.press("ArrowDown")
    expect(options.first).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    picked = box.input_value()
    assert picked.lower().startswith("deploy nemotron")
    box.fill(f"deploy llama-3.1 8B for {app} with budget $20/hour")
    box.press("Escape")
    page.get_by_role("button", name="Send").click()
    success = page.get_by_test_id("command-success")
    expect(success).to_contain_text(f"{app}-staging")
    expect(success).to_contain_text("DEPLOYING")
    expect(row(page, f"{app}-staging").locator("[data-status]")).to_have_attribute("data-status", "deployed")
    # the command is remembered: first in the dropdown, marked Recent, after a reload too
    page.reload()
    page.get_by_role("combobox", name="Command").click()
    first = page.get_by_role("listbox", name="Command suggestions").get_by_role("option").first
    expect(first).to_contain_text(f"deploy llama-3.1 8B for {app} with budget $20/hour")
    expect(first).to_contain_text("Recent")


def test_flow2_prod_waits_for_approval_and_an_approver_approves(ui: Browsing) -> None:
    alice = ui.open("alice")
    app = unique("shop")
    send(alice, f"deploy llama-3.1 8B for {app}", env="prod")
    success = alice.get_by_test_id("command-success")
    expect(success).to_contain_text("Requires approval")
    expect(success).to_contain_text(f"{app}-prod")
    expect(row(alice, f"{app}-prod").locator("[data-status]")).to_have_attribute("data-status", "pending_approval")
    item = alice.locator(f'[data-testid="approval"][data-endpoint="{app}-prod"]')
    expect(item).to_be_visible()
    expect(item.get_by_role("button", name="Approve")).to_have_count(0)  # a deployer cannot approve

    bob = ui.open("bob")
    item = bob.locator(f'[data-testid="approval"][data-endpoint="{app}-prod"]')
    expect(item.get_by_test_id("approval-cost")).to_contain_text("/h")
    item.get_by_text("Plan and evidence").click()
    expect(item.get_by_text("Source: knowledge/").first).to_be_visible()
    item.get_by_role("button", name="Approve").click()
    expect(bob.get_by_test_id("toast").filter(has_text=f"{app}-prod approved")).to_be_visible()
    expect(item).to_have_count(0)
    # alice's page follows by itself (live events or polling)
    expect(row(alice, f"{app}-prod").locator("[data-status]")).to_have_attribute("data-status", "deployed")


def test_approver_rejects_with_a_reason(ui: Browsing) -> None:
    app = unique("risky")
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "prod"})
    bob = ui.open("bob")
    item = bob.locator(f'[data-testid="approval"][data-endpoint="{app}-prod"]')
    item.get_by_role("button", name="Reject").click()
    expect(item.get_by_role("alert")).to_contain_text("Give a reason")  # nothing sent without one
    item.get_by_label(re.compile("Reason")).fill("not before the freeze ends")
    item.get_by_role("button", name="Reject").click()
    expect(item).to_have_count(0)
    expect(row(bob, f"{app}-prod").locator("[data-status]")).to_have_attribute("data-status", "rejected")
    action(bob, f"{app}-prod", "View details")
    dialog = bob.get_by_role("dialog")
    expect(dialog.get_by_test_id("details-timeline")).to_contain_text(
        "Approval rejected by bob: not before the freeze ends"
    )


def test_flow3_details_show_config_findings_evidence_calls_history_and_cost(ui: Browsing) -> None:
    app = unique("docs")
    # an open model (no Hugging Face token needed): nothing for the guardrails to say
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy qwen 2.5 7B for {app}", "env": "staging"})
    page = ui.open("vic")
    expect(row(page, f"{app}-staging").locator("[data-status]")).to_have_attribute("data-status", "deployed")
    action(page, f"{app}-staging", "View details")
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"{app}-staging")
    expect(dialog.get_by_test_id("details-config")).to_contain_text('"instance_type"')
    expect(dialog.get_by_test_id("details-findings")).to_contain_text("every guardrail passed")
    expect(dialog.get_by_test_id("details-evidence")).to_contain_text("Source: knowledge/")
    calls = dialog.get_by_test_id("details-calls")
    expect(calls).to_contain_text("SageMaker calls dry-run would make")
    for operation in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint"):
        expect(calls).to_contain_text(f"sagemaker:{operation}")
    expect(calls).to_contain_text("sagemaker-runtime:InvokeEndpoint")
    expect(dialog.get_by_test_id("smoke-test")).to_have_text("described")  # dry-run: the request, not sent
    timeline = dialog.get_by_test_id("details-timeline")
    for step in ("Command received", "Plan proposed", "deployment requested", "Status deployed"):
        expect(timeline).to_contain_text(step)
    expect(dialog.get_by_test_id("cost-so-far")).to_have_text(re.compile(r"^\$\d+\.\d{4}$"))
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_flow4_pause_and_restart(ui: Browsing) -> None:
    app = unique("pauser")
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "staging"})
    page = ui.open("alice")
    status = row(page, f"{app}-staging").locator("[data-status]")
    expect(status).to_have_attribute("data-status", "deployed")
    action(page, f"{app}-staging", "Pause")
    expect(page.get_by_test_id("toast").filter(has_text=f"Pause requested for {app}-staging")).to_be_visible()
    expect(status).to_have_attribute("data-status", "paused")
    # a paused deployment offers Restart and no Pause
    page.get_by_role("button", name=f"Actions for {app}-staging").click()
    expect(page.get_by_role("menuitem", name="Pause")).to_have_count(0)
    page.get_by_role("menuitem", name="Restart").click()
    expect(status).to_have_attribute("data-status", "deployed")


def test_flow5_delete_through_the_confirmation_dialog(ui: Browsing) -> None:
    app = unique("gone")
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "staging"})
    page = ui.open("alice")
    expect(row(page, f"{app}-staging")).to_be_visible()
    action(page, f"{app}-staging", "Delete")
    dialog = page.get_by_role("dialog", name="Delete deployment")
    expect(dialog).to_contain_text(f"{app}-staging")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(row(page, f"{app}-staging")).to_be_visible()
    action(page, f"{app}-staging", "Delete")
    page.get_by_role("dialog", name="Delete deployment").get_by_role("button", name="Delete").click()
    expect(page.get_by_test_id("toast").filter(has_text=f"Delete requested for {app}-staging")).to_be_visible()
    expect(row(page, f"{app}-staging")).to_have_count(0)  # deleted plans leave the table


def test_a_failed_delete_keeps_the_dialog_open_with_the_reason(ui: Browsing) -> None:
    app = unique("twice")
    plan = api(
        ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "staging"}
    )
    page = ui.open("alice")
    expect(row(page, f"{app}-staging")).to_be_visible()
    action(page, f"{app}-staging", "Delete")
    dialog = page.get_by_role("dialog", name="Delete deployment")
    api(ui, "DELETE", f"/api/deployments/{plan['plan_id']}", "erin")  # someone else is quicker
    for _ in range(50):
        if api(ui, "GET", f"/api/deployments/{plan['plan_id']}", "erin")["plan"]["status"] == "deleted":
            break
        page.wait_for_timeout(100)
    ui.console.expect("status of 409")
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog.get_by_role("alert")).to_contain_text("cannot delete a plan that is deleted")
    expect(dialog).to_be_visible()


def test_flow6_a_command_over_budget_lists_the_reasons_and_deploys_nothing(ui: Browsing) -> None:
    page = ui.open("alice")
    app = unique("big")
    send(page, f"deploy llama-3.1 70B for {app} with budget $1/hour")
    warning = page.get_by_test_id("command-validation")
    expect(warning).to_contain_text("nothing was deployed")
    expect(warning.locator("li").first).to_contain_text("over the budget")
    expect(row(page, f"{app}-staging").locator("[data-status]")).to_have_attribute("data-status", "validation_failed")


def test_flow7_status_badge_and_kpis_follow_the_system(ui: Browsing) -> None:
    page = ui.open("alice")
    expect(page.get_by_test_id("system-status")).to_have_text("All systems operational")
    expect(page.get_by_test_id("executor-mode")).to_have_text("dry-run")
    active = page.get_by_test_id("kpi-active-value")
    expect(active).to_have_text(re.compile(r"^\d+$"))
    before = int(active.inner_text())
    pending = page.get_by_test_id("kpi-pending-value")
    expect(pending).to_have_text(re.compile(r"^\d+$"))
    pending_before = int(pending.inner_text())
    send(page, f"deploy llama-3.1 8B for {unique('kpi')}")
    expect(page.get_by_test_id("command-success")).to_be_visible()
    expect(active).to_have_text(str(before + 1))
    send(page, f"deploy llama-3.1 8B for {unique('kpi')}", env="prod")
    expect(page.get_by_test_id("command-success")).to_contain_text("Requires approval")
    expect(pending).to_have_text(str(pending_before + 1))
    expect(page.get_by_test_id("kpi-cost-value")).to_have_text(re.compile(r"^\$[\d,]+\.\d\d$"))


def test_dark_mode_persists_across_reloads_without_a_flash(ui: Browsing) -> None:
    page = ui.open("alice", color_scheme="light")
    html = page.locator("html")
    expect(html).not_to_have_class(re.compile(r"\bdark\b"))
    page.get_by_role("button", name="Switch to dark theme").click()
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    assert page.evaluate("localStorage.getItem('theme')") == "dark"
    # Before the app's script runs at all, the class is already there: no light flash.
    page.route(re.compile(r"/assets/.*\.js$"), lambda route: route.abort())
    ui.console.expect("ERR_FAILED")
    page.reload()
    assert page.evaluate("document.documentElement.classList.contains('dark')") is True
    page.unroute(re.compile(r"/assets/.*\.js$"))
    page.reload()
    expect(page.get_by_role("button", name="Switch to light theme")).to_be_visible()
    page.get_by_role("button", name="Switch to light theme").click()
    page.reload()
    expect(page.get_by_role("button", name="Switch to dark theme")).to_be_visible()
    assert page.evaluate("document.documentElement.classList.contains('dark')") is False


def test_first_visit_follows_the_system_theme(ui: Browsing) -> None:
    page = ui.open("alice", color_scheme="dark")
    expect(page.locator("html")).to_have_class(re.compile(r"\bdark\b"))


def test_sign_in_with_a_key_and_the_url_key_is_kept_but_hidden(ui: Browsing) -> None:
    page = ui.open(None)
    expect(page.get_by_role("heading", name="Sign in to AgentOps")).to_be_visible()
    ui.console.expect("status of 401")
    page.get_by_label("API key").fill("aok_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    page.get_by_label("API key").fill(secret("dave"))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_contain_text("dave")

    admin = ui.open("admin")
    expect(admin.get_by_test_id("who")).to_contain_text("admin")
    assert "#key=" not in admin.url  # taken from the address bar once kept
    admin.reload()
    expect(admin.get_by_test_id("who")).to_contain_text("admin")
    admin.get_by_role("button", name="Sign out").click()
    expect(admin.get_by_role("heading", name="Sign in to AgentOps")).to_be_visible()


def test_a_viewer_sees_no_controls_that_change_anything(ui: Browsing) -> None:
    app = unique("look")
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "staging"})
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "prod"})
    page = ui.open("vic")
    expect(row(page, f"{app}-staging")).to_be_visible()
    expect(page.get_by_role("combobox", name="Command")).to_have_count(0)
    expect(page.get_by_role("button", name="Send")).to_have_count(0)
    page.get_by_role("button", name=f"Actions for {app}-staging").click()
    items = page.get_by_role("menuitem")
    expect(items).to_have_count(1)
    expect(items).to_have_text("View details")
    page.keyboard.press("Escape")
    approval = page.locator(f'[data-testid="approval"][data-endpoint="{app}-prod"]')
    expect(approval).to_be_visible()
    expect(approval.get_by_role("button")).to_have_count(0)


def test_the_actions_menu_works_from_the_keyboard_and_is_not_clipped(ui: Browsing) -> None:
    app = unique("keys")
    api(ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "staging"})
    page = ui.open("alice")
    button = page.get_by_role("button", name=f"Actions for {app}-staging")
    button.focus()
    page.keyboard.press("Enter")
    menu = page.get_by_role("menu")
    expect(menu.get_by_role("menuitem", name="View details")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Pause")).to_be_focused()
    box = menu.bounding_box()
    viewport = page.viewport_size
    assert box and viewport
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
    page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(button).to_be_focused()


def fail_as_the_executor(home: Path, plan_id: str, endpoint: str, reason: str) -> None:
    """What the executor says when SageMaker fails an endpoint (dry-run never does): a signed
    `deployment.status` from the executor's own identity, on the system's own bus."""
    runtime = runtime_urls(home)
    assert runtime is not None
    settings = Settings(identity_dir=home / "identity")
    data = DeploymentStatusData(status="failed", endpoint_name=endpoint, mode="dry-run", reason=reason)
    event = DeploymentStatus(plan_id=plan_id, actor="executor", data=data)

    async def publish() -> None:
        nc = await connect(settings, "executor", runtime["nats_url"])
        try:
            body = event.canonical_json().encode()
            headers = {
                "Nats-Msg-Id": str(event.id),
                **Signer.from_file("executor", settings.seed_path("executor")).sign(body),
            }
            await nc.jetstream().publish(event.subject, body, headers=headers)
        finally:
            await nc.close()

    # Playwright's sync API holds this thread's event loop: publish from another thread.
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(publish, errors))
    thread.start()
    thread.join(30)
    assert not errors, errors


def _run(main: Any, errors: list[BaseException]) -> None:
    try:
        asyncio.run(main())
    except BaseException as exc:
        errors.append(exc)


def test_a_failed_deployment_shows_its_reason_in_the_table_and_the_details(ui: Browsing) -> None:
    page = ui.open("alice")
    app = unique("fail")
    answer = api(
        ui, "POST", "/api/agent/command", "alice", {"command": f"deploy llama-3.1 8B for {app}", "env": "staging"}
    )
    endpoint = f"{app}-staging"
    expect(row(page, endpoint).locator("[data-status]")).to_have_attribute("data-status", "deployed")
    reason = "ResourceLimitExceeded: the account-level service limit for ml.g5.xlarge is 0 instances"
    fail_as_the_executor(ui.running.home, answer["plan_id"], endpoint, reason)
    expect(row(page, endpoint).locator("[data-status]")).to_have_attribute("data-status", "failed")
    expect(row(page, endpoint).get_by_test_id("row-reason")).to_have_text(reason)
    action(page, endpoint, "View details")
    expect(page.get_by_test_id("failure-reason")).to_contain_text(reason)


def test_budgets_and_schedules_on_the_dashboard_and_in_the_details(ui: Browsing) -> None:
    app = unique("office")
    answer = api(
        ui, "POST", "/api/agent/command", "alice", {"command": f"deploy qwen 2.5 7B for {app}", "env": "staging"}
    )
    api(ui, "PUT", f"/api/budgets/app:{app}", "root", {"monthly_usd": 500})
    page = ui.open("alice")
    endpoint = f"{app}-staging"
    expect(row(page, endpoint).locator("[data-status]")).to_have_attribute("data-status", "deployed")
    budget = page.get_by_test_id("budgets").locator(f'li[data-scope="app:{app}"]')
    expect(budget).to_contain_text("$500.00")
    expect(budget.get_by_test_id("budget-forecast")).to_have_text(re.compile(r"^\$[\d,]+\.\d{2}$"))
    # a schedule set in the details view: every day, all but one minute of it, so the endpoint
    # stays up whenever this runs (the executor acts on the real clock here)
    action(page, endpoint, "View details")
    dialog = page.get_by_role("dialog")
    section = dialog.get_by_test_id("details-schedule")
    expect(section.get_by_test_id("schedule-summary")).to_contain_text("always on")
    section.get_by_role("button", name="Change schedule").click()
    form = section.get_by_role("form", name="Schedule")
    form.get_by_label("Days").fill("*")
    form.get_by_label("Start").fill("00:00")
    form.get_by_label("Stop").fill("00:00")
    form.get_by_role("button", name="Save schedule").click()
    ui.console.expect("422")
    expect(section.get_by_test_id("schedule-error")).to_contain_text("would never run")  # said, nothing saved
    form.get_by_label("Stop").fill("23:59")
    form.get_by_label("Idle minutes").fill("240")
    form.get_by_role("button", name="Save schedule").click()
    expect(section.get_by_test_id("schedule-summary")).to_contain_text(
        "runs * 00:00–23:59 UTC · paused after 240 min idle"
    )
    expect(section.get_by_test_id("schedule-summary")).to_contain_text("set by alice")
    expect(section.get_by_test_id("schedule-next-transition")).to_contain_text("Next:")
    page.keyboard.press("Escape")  # focus came back from the form: Escape still closes the dialog
    expect(dialog).to_have_count(0)
    listed = page.get_by_test_id("schedules").locator(f'li[data-endpoint="{endpoint}"]')
    expect(listed.get_by_test_id("schedule-rules")).to_have_text("runs * 00:00–23:59 UTC · paused after 240 min idle")
    # a viewer sees them and cannot change them
    viewer = ui.open("vic")
    action(viewer, endpoint, "View details")
    viewed = viewer.get_by_role("dialog").get_by_test_id("details-schedule")
    expect(viewed.get_by_test_id("schedule-summary")).to_contain_text("paused after 240 min idle")
    expect(viewed.get_by_role("button", name="Change schedule")).to_have_count(0)
    # removed from the details view: the panel no longer lists it
    action(page, endpoint, "View details")
    page.get_by_role("dialog").get_by_role("button", name="Remove schedule").click()
    expect(page.get_by_role("dialog").get_by_test_id("schedule-summary")).to_contain_text("always on")
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    expect(page.get_by_test_id("schedules").locator(f'li[data-endpoint="{endpoint}"]')).to_have_count(0)
    assert answer["plan_id"]
