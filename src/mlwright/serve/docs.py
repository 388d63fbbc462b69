"""``/docs`` (Swagger UI) and ``/redoc`` served from this machine, never from a CDN.

The pages' scripts and styles come from the ``fastapi-offline`` package (a core dependency that
ships Swagger UI and ReDoc), served under ``/docs/assets/``, so the docs work on a host with no
internet access and load nothing from another site.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from mlwright.serve.schemas import error_body

ASSETS = "/docs/assets"
_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


def _assets_folder() -> Path | None:
    spec = importlib.util.find_spec("fastapi_offline")  # its files, not its code
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def add_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/redoc`` and their assets to ``app`` (made with no docs of its own)."""
    folder = _assets_folder()

    def root(request: Request) -> str:
        return str(request.scope.get("root_path", ""))

    @app.get("/docs", include_in_schema=False)
    async def swagger(request: Request) -> HTMLResponse:
        base = root(request) + ASSETS
        return get_swagger_ui_html(
            openapi_url=root(request) + str(app.openapi_url),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{base}/swagger-ui-bundle.js",
            swagger_css_url=f"{base}/swagger-ui.css",
            swagger_favicon_url=f"{base}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        base = root(request) + ASSETS
        return get_redoc_html(
            openapi_url=root(request) + str(app.openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{base}/redoc.standalone.js",
            redoc_favicon_url=f"{base}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in _FILES:
            return JSONResponse(
                error_body(f"no docs asset {name[:80]!r}", "open /docs"), status_code=404
            )
        if folder is None or not (folder / name).is_file():
            return JSONResponse(
                error_body(
                    "the docs assets are not installed", "pip install fastapi-offline (or mlwright)"
                ),
                status_code=404,
            )
        return FileResponse(
            folder / name,
            media_type=_FILES[name],
            headers={"cache-control": "public, max-age=86400"},
        )


__all__ = ["ASSETS", "add_docs"]
