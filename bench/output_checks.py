"""How fast ``check_output`` reads a large CSV, beside a plain ``csv.reader`` pass measured in the same run.

Run with ``make bench`` (or ``.venv/bin/python bench/output_checks.py``; ``INFRACALC_BENCH_CSV_MB``
sets the size, default 200). Writes, in a temporary directory, a realistic output table: a label
column and 20 count columns, mostly counts in the hundreds and thousands, about one cell in 500
a small count or a zero (so the rules have work to do). Then times, best of two each:

- baseline: a plain ``csv.reader`` pass over the same file, counting cells (the floor: reading
  and splitting the text, nothing else);
- ``check_output``: type detection, the size cap, every parse limit, the small-count and zero
  rules, the report and the risk score.

Memory: the peak resident set size of this process (``ru_maxrss``) after the baseline and after
the checks; it must not grow with the file (the checks stream). Absolute rates depend on the
machine and its load (printed); the ratio is what to compare across runs.
"""

from __future__ import annotations

import csv
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from infracalc.casd.checks import CheckSettings, check_output

SIZE_MB = int(os.environ.get("INFRACALC_BENCH_CSV_MB", "200"))
COLUMNS = 20
ROUNDS = 2


def generate(path: Path, size: int) -> int:
    """Write a count table of about ``size`` bytes; return its row count."""
    rng = random.Random(6)  # noqa: S311 - test data, not secrets
    header = "region," + ",".join(f"year_{2000 + i}" for i in range(COLUMNS)) + "\n"
    # A pool of realistic rows, reused: generating 200 MB cell by cell would dominate the run.
    pool = []
    for i in range(5_000):
        cells = []
        for _ in range(COLUMNS):
            draw = rng.random()
            cells.append(str(rng.randint(0, 9)) if draw < 0.002 else str(rng.randint(10, 25_000)))
        pool.append(f"area {i:05d}," + ",".join(cells) + "\n")
    rows = 0
    written = 0
    with path.open("w", newline="") as handle:
        handle.write(header)
        while written < size:
            block = "".join(pool[(rows + j) % len(pool)] for j in range(1_000))
            handle.write(block)
            written += len(block)
            rows += 1_000
    return rows


def baseline(path: Path) -> int:
    cells = 0
    with path.open(newline="") as handle:
        for row in csv.reader(handle):
            cells += len(row)
    return cells


T = TypeVar("T")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def best(function: Callable[[], T], rounds: int) -> tuple[float, float, T]:
    """Best wall time and its CPU time over ``rounds`` calls (at least one), and the last result."""
    timings = []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        timings.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(timings)
    return wall, cpu, result


def main() -> None:
    settings = CheckSettings(max_bytes=4 * 1024**3, max_rows=100_000_000)
    with tempfile.TemporaryDirectory(prefix="infracalc-bench-") as directory:
        path = Path(directory) / "counts.csv"
        started = time.perf_counter()
        rows = generate(path, SIZE_MB * 1024 * 1024)
        size_mb = path.stat().st_size / 1e6
        print(
            f"wrote {size_mb:,.0f} MB, {rows:,} rows x {COLUMNS + 1} columns in {time.perf_counter() - started:.1f} s"
        )
        rss_start = peak_rss_mb()

        base_wall, base_cpu, cells = best(lambda: baseline(path), ROUNDS)
        rss_baseline = peak_rss_mb()
        check_wall, check_cpu, report = best(lambda: check_output(path, name="counts.csv", settings=settings), ROUNDS)
        rss_check = peak_rss_mb()

    flagged = {f.check: f.details.get("flagged") for f in report.findings if "flagged" in f.details}
    print(f"output checks on a {size_mb:,.0f} MB CSV ({cells:,} cells), best of {ROUNDS}")
    print(f"  baseline csv.reader : {size_mb / base_wall:7.1f} MB/s  ({base_wall:.2f} s, CPU {base_cpu:.2f} s)")
    print(f"  check_output        : {size_mb / check_wall:7.1f} MB/s  ({check_wall:.2f} s, CPU {check_cpu:.2f} s)")
    print(f"  check_output / baseline: {check_wall / base_wall:.2f}x wall time, {check_cpu / base_cpu:.2f}x CPU time")
    print(f"  report: {report.outcome} ({report.risk_level}, {report.risk_score}); flagged cells {flagged}")
    print(
        f"  peak RSS: {rss_start:.0f} MB before, {rss_baseline:.0f} MB after the baseline, "
        f"{rss_check:.0f} MB after the checks (the file is {size_mb:,.0f} MB)"
    )
    print(f"  load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
