"""The dashboard (architecture §14): a static page at `/` that reads the public statistics
endpoints in the browser, with the key the user gives.

    /                            dashboard.html (the same bytes for everyone: no key, no data)
    /dashboard/static/...        its scripts, styles and the country-code table (this package)
    /dashboard/static/vendor/... d3-array, d3-geo, topojson-client, world-atlas, uPlot from npm,
                                 fetched by `viewstats setup` into the shared cache or the data
                                 dir's dashboard-assets/ (never a CDN)

The key lives in the browser (the URL fragment, the field, sessionStorage) and reaches the
server only in the Authorization header of the API calls, like any other client's.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from viewstats.core.setup_files import SetupDir

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
ATLAS = "countries-110m.json"

# Everything from this origin; the page calls only its own API. No inline script or style, so a
# value shown on the page can never run as code.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
                               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def dashboard_routes(assets: Path) -> list[BaseRoute]:
    """The page and its files; `assets` holds the npm libraries (see viewstats/assets.py)."""
    if not (assets / ATLAS).is_file():
        log.warning("%s not found: the dashboard shows no map or chart; run `viewstats setup`",
                    assets / ATLAS)
    page = (STATIC_DIR / "dashboard.html").read_bytes()

    async def dashboard_page(_: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    return [
        Route("/", dashboard_page, methods=["GET"]),
        Mount("/dashboard/static/vendor", app=SetupDir(directory=assets, check_dir=False)),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC_DIR)),
    ]
