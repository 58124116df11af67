"""The routes that serve the web console's files: ``GET /`` (the page) and ``GET /web/NAME``
(its modules, styles and icon), all package data of ``linkserver.web``.

Nothing here answers data: the page uses the network API (``/api/v1``) like any client.
The files are sent with a Content-Security-Policy that allows only this origin (no inline
script, no eval, no outside host), so a console page loads nothing from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Only the files shipped (read once): a name is looked up, never joined into a path.
FILES = {path.name: path for path in STATIC.iterdir() if path.suffix in TYPES} if STATIC.is_dir() else {}

# connect-src 'self' covers ws:// and wss:// to this host and port (CSP Level 3).
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # revalidated (ETag): a new version is seen on the next load
}


def _file(path: Path) -> Response:
    return FileResponse(path, headers=HEADERS, media_type=TYPES[path.suffix])


async def _page(request: Request) -> Response:
    return _file(FILES["index.html"])


async def _asset(request: Request) -> Response:
    path = FILES.get(request.path_params["name"])
    if path is None:
        message = f"no file {request.url.path} in the web console; see docs/web.md"
        return JSONResponse({"error": {"type": "NotFound", "message": message}}, status_code=404)
    return _file(path)


def console_routes() -> list[Route]:
    """``GET /`` and ``GET /web/NAME``: the console's page and files."""
    return [
        Route("/", _page, methods=["GET"], name="console"),
        Route("/web/{name}", _asset, methods=["GET"], name="console file"),
    ]
