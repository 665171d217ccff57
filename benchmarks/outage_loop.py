"""Run the broker outage tests over and over beside CPU-bound load, and count how many pass.

A fault test that passed once proves little: a stall that depends on timing shows up only
now and then. This runs tests/test_broker_outage.py as one pytest session, so that the whole
module shares its one broker (the order CI runs it in), with its 10 s SIGKILL case repeated
`--sigkill` times and its 60 s SIGTERM case `--sigterm` times, while `--burners` processes
keep the cores busy. Not part of CI: the default loop takes about 40 minutes.

    python -m benchmarks.outage_loop                       # 20 x 10 s SIGKILL, 5 x 60 s SIGTERM
    python -m benchmarks.outage_loop --sigkill 2 --sigterm 0 --burners 0

With `--out FILE` the counts go to a JSON result for benchmarks.report (RESULTS.md), with the
code's commit (`--label`, e.g. "before" for a run of the previous code).
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from benchmarks.record import write_result

MODULE = "tests/test_broker_outage.py"
OUTAGE_TEST = "test_beacons_through_a_broker_outage_are_answered_and_counted_once"
CASES = {"sigkill": f"{OUTAGE_TEST}[10s-sigkill]", "sigterm": f"{OUTAGE_TEST}[60s-sigterm]"}


class Repeat:
    """A pytest plugin: each chosen test runs `times[name]` times in a row, the rest once."""

    def __init__(self, times: dict[str, int]) -> None:
        self._times = times
        self.outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter)

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        items[:] = [copy for item in items
                    for copy in _copies(item, self._times.get(item.name, 1))]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            name = report.nodeid.split("::")[-1].split("#")[0]
            self.outcomes[name][report.outcome] += 1
            done = sum(self.outcomes[name].values())
            print(f"\n[outage loop] {name}: run {done}: {report.outcome}", flush=True)


def _copies(item: pytest.Item, times: int) -> list[pytest.Item]:
    """`item` and `times - 1` new items of the same test: an item run twice loses its
    function fixtures (pytest tears its request down), so each run needs an item of its own."""
    if times == 1 or not isinstance(item, pytest.Function):
        return [item] * times
    return [pytest.Function.from_parent(
        item.parent, name=f"{item.name}#{n}", originalname=item.originalname,
        callspec=getattr(item, "callspec", None), callobj=item.obj,
        fixtureinfo=item._fixtureinfo, keywords=item.keywords) for n in range(1, times + 1)]


def _burn() -> None:
    while True:
        pass


@contextmanager
def _cpu_load(burners: int) -> Iterator[None]:
    processes = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(burners)]
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
            process.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sigkill", type=int, default=20, metavar="N",
                        help="runs of the 10 s SIGKILL outage (default 20)")
    parser.add_argument("--sigterm", type=int, default=5, metavar="N",
                        help="runs of the 60 s SIGTERM outage (default 5)")
    parser.add_argument("--burners", type=int, default=2, metavar="N",
                        help="CPU-bound processes running beside the tests (default 2)")
    parser.add_argument("--basetemp", metavar="DIR",
                        help="pytest's temp folder, kept afterwards: each run's run.log (the "
                             "server's log) is in it (default: pytest's own, which keeps only "
                             "the last 3 sessions)")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="write the counts as JSON here (benchmarks/results/outage_loop*.json "
                             "for the report)")
    parser.add_argument("--label", default="", help="what code this is, for the report")
    args = parser.parse_args(argv)
    plugin = Repeat({CASES["sigkill"]: args.sigkill, CASES["sigterm"]: args.sigterm})
    started = time.monotonic()
    with _cpu_load(args.burners):
        code = pytest.main([MODULE, "-p", "no:cacheprovider", "-s", "-q",
                            *([f"--basetemp={args.basetemp}"] if args.basetemp else [])],
                           plugins=[plugin])
    print(f"\n{MODULE} beside {args.burners} CPU-bound processes, "
          f"{(time.monotonic() - started) / 60:.1f} min:")
    for name, counts in plugin.outcomes.items():
        runs = sum(counts.values())
        print(f"  {name}: {counts['passed']} of {runs} passed"
              + "".join(f", {n} {outcome}" for outcome, n in counts.items()
                        if outcome != "passed"))
    if args.out:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
        write_result(args.out, {
            "label": args.label, "commit": commit, "burners": args.burners,
            "minutes": round((time.monotonic() - started) / 60, 1),
            "cases": {name: dict(counts) for name, counts in plugin.outcomes.items()}})
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
