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

PKG="hls.js"
VERSION="1.7.4"
FILES=("dist/hls.min.js" "LICENSE")

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache/npm-player"
TARGET="${1:-$REPO/data/player-assets}"
PKG_DIR="$CACHE/node_modules/$PKG"

die() { echo "fetch_player_assets: $*" >&2; exit 1; }

installed_version() {
    # Prints the version of the package in the cache, or nothing.
    local manifest="$PKG_DIR/package.json"
    [[ -f "$manifest" ]] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

missing_files() {
    local f
    for f in "${FILES[@]}"; do [[ -s "$PKG_DIR/$f" ]] || return 0; done
    return 1
}

if [[ "$(installed_version)" != "$VERSION" ]] || missing_files; then
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed to fetch $PKG@$VERSION)"
    mkdir -p "$CACHE"
    echo "fetch_player_assets: installing $PKG@$VERSION into $CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --ignore-scripts --save-exact \
        --loglevel=error "$PKG@$VERSION" >/dev/null
    [[ "$(installed_version)" == "$VERSION" ]] \
        || die "npm did not install $PKG@$VERSION into $CACHE"
    ! missing_files || die "$PKG@$VERSION lacks one of ${FILES[*]} (package layout changed?)"
fi

mkdir -p "$TARGET"
for f in "${FILES[@]}"; do
    name="$(basename "$f")"
    [[ "$name" == LICENSE ]] && name="hls.js-LICENSE"
    if ! cmp -s "$PKG_DIR/$f" "$TARGET/$name"; then
        # Copy then rename, so a running server never serves a half-written file.
        cp "$PKG_DIR/$f" "$TARGET/.$name.tmp"
        chmod 0644 "$TARGET/.$name.tmp"
        mv -f "$TARGET/.$name.tmp" "$TARGET/$name"
    fi
done
echo "fetch_player_assets: $PKG@$VERSION -> $TARGET/hls.min.js, $TARGET/hls.js-LICENSE"
