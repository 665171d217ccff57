#!/usr/bin/env bash
# Fetch hls.js (Apache-2.0) from the npm registry and copy its browser build, with its licence,
# into a target directory (default: <repo>/data/player-assets/), which the platform serves as
# /player/static/vendor/. The player page never loads anything from a CDN.
#
#   scripts/fetch_player_assets.sh [TARGET_DIR]
#
# The package is pinned to an exact version and installed into <repo>/.cache/npm-player; when
# that cache already holds the pinned version nothing is downloaded. npm is the only source.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec bash "$REPO/scripts/npm_files.sh" player hls.js 1.7.4 "${1:-$REPO/data/player-assets}" \
    dist/hls.min.js LICENSE:hls.js-LICENSE
