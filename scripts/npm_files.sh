#!/usr/bin/env bash
# Install an npm package at a pinned version into <repo>/.cache/npm-<cache> and copy some of its
# files into a target directory. npm is the only source; a cache that already holds the pinned
# version downloads nothing. Files are replaced by rename, and only when their content changed,
# so a running server never reads a half-written file.
#
#   scripts/npm_files.sh CACHE PACKAGE VERSION TARGET_DIR FILE[:NAME]...
#
# FILE is a path inside the package; NAME (default its base name) is the name in TARGET_DIR.
set -euo pipefail

[[ $# -ge 5 ]] || { echo "usage: $0 CACHE PACKAGE VERSION TARGET_DIR FILE[:NAME]..." >&2; exit 2; }
CACHE_NAME="$1" PKG="$2" VERSION="$3" TARGET="$4"
shift 4
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache/npm-$CACHE_NAME"
PKG_DIR="$CACHE/node_modules/$PKG"

die() { echo "npm_files: $*" >&2; exit 1; }

installed_version() {
    local manifest="$PKG_DIR/package.json"
    [[ -f "$manifest" ]] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

all_present() {
    local spec
    for spec in "$@"; do [[ -s "$PKG_DIR/${spec%%:*}" ]] || return 1; done
}

if [[ "$(installed_version)" != "$VERSION" ]] || ! all_present "$@"; then
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed to fetch $PKG@$VERSION)"
    mkdir -p "$CACHE"
    echo "npm_files: installing $PKG@$VERSION into $CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --ignore-scripts --save-exact \
        --loglevel=error "$PKG@$VERSION" >/dev/null
    [[ "$(installed_version)" == "$VERSION" ]] || die "npm did not install $PKG@$VERSION"
    all_present "$@" || die "$PKG@$VERSION lacks one of $* (package layout changed?)"
fi

mkdir -p "$TARGET"
for spec in "$@"; do
    file="${spec%%:*}"
    name="$(basename "$file")"
    [[ "$spec" == *:* ]] && name="${spec#*:}"
    if ! cmp -s "$PKG_DIR/$file" "$TARGET/$name"; then
        cp "$PKG_DIR/$file" "$TARGET/.$name.tmp"
        chmod 0644 "$TARGET/.$name.tmp"
        mv -f "$TARGET/.$name.tmp" "$TARGET/$name"
    fi
    echo "npm_files: $PKG@$VERSION $file -> $TARGET/$name ($(wc -c <"$TARGET/$name" | tr -d ' ') bytes)"
done
