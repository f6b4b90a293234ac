"""The gateway's server spans are named by route template (what an operator groups traces by),
found once per method and path rather than by matching every route on every request."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from services.runtime.telemetry import RouteNames


def app() -> FastAPI:
    api = FastAPI()
    router = APIRouter()

    @router.get("/api/deployments/{plan_id}")
    async def plan(plan_id: str) -> dict[str, str]:
        return {"plan_id": plan_id}

    @router.post("/api/agent/command")
    async def command() -> dict[str, str]:
        return {}

    api.include_router(router)

    @api.get("/healthz")
    async def health() -> dict[str, str]:
        return {}

    return api


def test_paths_are_named_by_their_route_template() -> None:
    names = RouteNames(app())
    assert names.span_details({"type": "http", "method": "GET", "path": "/api/deployments/abc"}) == (
        "GET /api/deployments/{plan_id}",
        {"http.request.method": "GET", "http.route": "/api/deployments/{plan_id}"},
    )
    assert names.span_details({"type": "http", "method": "POST", "path": "/api/agent/command"})[0] == (
        "POST /api/agent/command"
    )
    # a route's path asked with another method (answered 405) still names the route
    assert names.span_details({"type": "http", "method": "DELETE", "path": "/api/agent/command"})[0] == (
        "DELETE /api/agent/command"
    )


def test_a_path_no_route_matches_is_named_by_its_method_alone() -> None:
    """No unbounded span names: a 404 path (scanners try thousands) never becomes a name."""
    names = RouteNames(app())
    assert names.span_details({"type": "http", "method": "GET", "path": "/wp-admin/x.php"}) == (
        "GET",
        {"http.request.method": "GET"},
    )


def test_the_lookup_is_cached_and_bounded() -> None:
    names = RouteNames(app(), size=8)
    for i in range(100):
        names.span_details({"type": "http", "method": "GET", "path": f"/api/deployments/p{i}"})
    info = names.template.cache_info()
    assert info.currsize == 8 and info.maxsize == 8
    names.span_details({"type": "http", "method": "GET", "path": "/api/deployments/p99"})
    assert names.template.cache_info().hits == info.hits + 1
