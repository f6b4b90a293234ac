"""The gateway serves the dashboard build at / without shadowing the API, and says plainly when
there is no build."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import running, system_settings

pytestmark = pytest.mark.integration


def build(root: Path) -> Path:
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text('<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>')
    (root / "assets" / "app-1a2b.js").write_text("console.log('dashboard')")
    (root / "theme-init.js").write_text("/* theme */")
    return root


async def test_the_build_is_served_with_a_strict_policy_and_the_api_is_untouched(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    settings = system_settings(nats_url, database_url).model_copy(update={"dashboard_dir": build(tmp_path / "dist")})
    async with running(settings) as client:
        page = await client.get("/", headers={"Authorization": ""})
        assert page.status_code == 200 and "/assets/app-1a2b.js" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["cache-control"] == "no-cache"
        asset = await client.get("/assets/app-1a2b.js", headers={"Authorization": ""})
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]
        assert (await client.get("/theme-init.js", headers={"Authorization": ""})).text == "/* theme */"
        assert (await client.get("/assets/../../etc/passwd", headers={"Authorization": ""})).status_code == 404
        assert (await client.get("/no-such-page", headers={"Authorization": ""})).status_code == 404
        # the API keeps its own answers: still closed without a key, JSON errors, not the page
        closed = await client.get("/api/deployments", headers={"Authorization": ""})
        assert closed.status_code == 401 and "missing API key" in closed.json()["detail"]
        assert (await client.get("/approvals", headers={"Authorization": ""})).status_code == 401
        assert (await client.post("/api/agent/command", json={"command": "deploy llama 3.1 8b for x"})).status_code in (
            200,
            202,
        )
        assert "/" not in (await client.get("/openapi.json")).json()["paths"]


async def test_without_a_build_the_page_says_how_to_get_one(nats_url: str, database_url: str, tmp_path: Path) -> None:
    settings = system_settings(nats_url, database_url).model_copy(update={"dashboard_dir": tmp_path / "nothing"})
    async with running(settings) as client:
        page = await client.get("/", headers={"Authorization": ""})
        assert page.status_code == 404
        assert "dashboard is not built" in page.text and "npm run build" in page.text
        assert (await client.get("/healthz")).status_code == 200
