# One image for every role: `viewstats collector|consumer|api|migrate|run|keys`.
#
#   docker build -t viewstats .
#   docker run --rm -p 8000:8000 viewstats                  # the embedded default, data in /data

FROM python:3.11-slim AS package
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY viewstats viewstats
COPY ingest ingest
COPY query_api query_api
COPY schema schema
COPY player player
# Not editable: the image runs the installed package, not a checkout. Installed under a prefix
# so that the asset stage and the image copy the same install into /usr/local.
RUN pip install --prefix=/install .

# The GeoIP database and hls.js come from npm (architecture §3): `viewstats setup` fetches the
# pinned releases and checks each tarball's sha512. Node.js lives in this build stage only.
FROM python:3.11-slim AS assets
RUN apt-get update && apt-get install -y --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*
COPY --from=package /install /usr/local
# The tarballs only serve re-extraction; the image needs the files and the manifest.
RUN viewstats setup --cache-dir /assets && rm -rf /assets/tarballs /assets/.lock

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=package /install /usr/local
# The shared cache, read-only: every data dir reads geoip/ and player-assets/ from it unless
# the volume holds its own copy.
COPY --from=assets /assets /usr/share/viewstats
RUN useradd --system --uid 10001 --home-dir /data --create-home viewstats
USER viewstats
WORKDIR /data
# GEOIP_DB names the cache's geoip/ outright (its City files, for regions), as compose.yaml does.
ENV VIEWSTATS_DATA_DIR=/data \
    VIEWSTATS_CACHE_DIR=/usr/share/viewstats \
    GEOIP_DB=/usr/share/viewstats/geoip
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["viewstats"]
CMD ["run", "--host", "0.0.0.0"]
