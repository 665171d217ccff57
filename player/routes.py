"""HTTP routes of the built-in player: its page, its static files, and the media directory.

    /player/{client_id}/{video_id}?src=<HLS playlist URL>&type=vod[&collector=<events URL>]
    /player/static/...          player.js, player.css (shipped in this package)
    /player/static/vendor/...   hls.min.js from npm, fetched by `viewstats setup` into the
                                shared cache or the data dir's player-assets/ (never a CDN)
    /media/...                  HLS streams under <data-dir>/media (player/sample_stream.py)

The page is the same static HTML for every video: player.js reads the client id, the video id
and the query parameters from its own URL, so nothing from the request is ever written into HTML.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from viewstats.core.events import MAX_CLIENT_ID
from viewstats.core.setup_files import SetupDir

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
HLS_JS = "hls.min.js"

# Media and beacons may live on other origins (`src`, `collector`); scripts, styles and frames
# may not. hls.js feeds the video element through a blob: MediaSource URL and runs its
# transmuxer in a blob: worker.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob: https: http:; "
                               "connect-src *; worker-src blob:; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


def player_routes(assets: Path) -> list[BaseRoute]:
    """The page and its static files; `assets` holds hls.min.js (see viewstats/assets.py)."""
    if not (assets / HLS_JS).is_file():
        log.warning("%s not found: the player works only where the browser plays HLS natively; "
                    "run `viewstats setup`", assets / HLS_JS)
    page = (STATIC_DIR / "player.html").read_bytes()

    async def player_page(request: Request) -> Response:
        if request.path_params["client_id"] > MAX_CLIENT_ID:
            return PlainTextResponse("unknown client", status_code=404)
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    return [
        Route("/player/{client_id:int}/{video_id}", player_page, methods=["GET"]),
        Mount("/player/static/vendor", app=SetupDir(directory=assets, check_dir=False)),
        Mount("/player/static", app=StaticFiles(directory=STATIC_DIR)),
    ]


def media_routes(media: Path) -> list[BaseRoute]:
    """HLS streams under `media` (e.g. <data-dir>/media/test/index.m3u8 at /media/test/...)."""
    return [Mount("/media", app=SetupDir(directory=media, check_dir=False))]
