"""The dashboard and the API's docs: static files shipped in packages, served at /, /docs
and /static; nothing is loaded from elsewhere."""

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

WEB_FILES = Path(str(files("roadwatch").joinpath("web")))
# Swagger UI's files, at the version that fastapi-offline (pinned in constraints.txt) ships.
SWAGGER_UI_FILES = Path(str(files("fastapi_offline").joinpath("static")))

# The dashboard loads nothing from elsewhere and may not be framed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/")
async def dashboard() -> FileResponse:
    return FileResponse(WEB_FILES / "index.html", headers=PAGE_HEADERS)


@router.get("/docs")
async def docs() -> FileResponse:
    return FileResponse(WEB_FILES / "docs.html", headers=PAGE_HEADERS)
