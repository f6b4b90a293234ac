"""Serves the React dashboard build (`frontend/dist`) at `/`.

Only the build's own files get routes (`/`, its top-level files and `/assets/*`), so nothing here
can shadow an API path, and an unknown path still answers 404 as before. The page is sent with a
strict Content-Security-Policy: the build needs no inline script or style and talks only to this
origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from shared.settings import Settings

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "frontend" / "dist"
ROUTE_PREFIX = "dashboard:"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>AgentOps</title></head>
<body>
<h1>AgentOps is running; the dashboard is not built</h1>
<p>The API works (<a href="/docs">/docs</a>). To get the dashboard, install Node.js 18 or newer and
run <code>make run</code> again, or build it yourself:
<code>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</code>.</p>
</body></html>"""


def dashboard_dir(settings: Settings) -> Path:
    return settings.dashboard_dir or DEFAULT_DIR


def is_dashboard_route(name: str | None) -> bool:
    return bool(name and name.startswith(ROUTE_PREFIX))


def install(app: FastAPI, settings: Settings) -> None:
    root = dashboard_dir(settings)
    index = root / "index.html"
    if not index.is_file():

        @app.get("/", include_in_schema=False, name=ROUTE_PREFIX + "not-built")
        async def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT, status_code=404, headers=PAGE_HEADERS)

        return

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False, name=ROUTE_PREFIX + "index")
    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=PAGE_HEADERS)

    for file in sorted(p for p in root.iterdir() if p.is_file() and p.name != "index.html"):
        app.add_api_route(
            f"/{file.name}",
            _static(file),
            methods=["GET", "HEAD"],
            include_in_schema=False,
            name=ROUTE_PREFIX + file.name,
        )
    if (root / "assets").is_dir():
        # Hashed file names: safe to cache for a year.
        app.mount("/assets", _ImmutableFiles(directory=root / "assets"), name=ROUTE_PREFIX + "assets")


def _static(file: Path):  # type: ignore[no-untyped-def]
    async def serve() -> FileResponse:
        return FileResponse(file, headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    return serve


class _ImmutableFiles(StaticFiles):
    async def get_response(self, path: str, scope):  # type: ignore[no-untyped-def]
        response: Response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
