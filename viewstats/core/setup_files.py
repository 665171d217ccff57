"""Serving a folder that something else makes, which may not exist yet: what `viewstats setup`
fills (the player's hls.js, the dashboard's libraries; viewstats/assets.py), the media folder."""

from __future__ import annotations

from starlette.staticfiles import StaticFiles


class SetupDir(StaticFiles):
    """Files in a directory made elsewhere: 404 (not Starlette's 500) while it is missing."""

    async def check_config(self) -> None:
        return None
