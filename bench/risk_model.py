"""Colysée measured honestly: what the risk model adds to the rules, at equal review load, on synthetic outputs.

Run with ``make bench`` (or ``.venv/bin/python bench/risk_model.py``; ``INFRACALC_BENCH_OUTPUTS``
sets the corpus size, default 3000; ``INFRACALC_BENCH_SEED`` its seed, default 21).

**The corpus.** Synthetic outputs written as real files and put through the real output checks
(``check_output``), so every report, feature and level is the platform's own: safe count tables,
tables with small counts (smallest 1 to 9), tables with zeros, wide cross-tabulations (25 to 60
columns, 20 to 60 rows, every count large), magnitude tables with contributions per cell (top-two
share from 0.5 to 1), PNG images and text notes; twelve projects, all under INFRACALC governance;
one output per time step.

**The reviewers' hidden rule** (what the model must discover; the rules do not know it):

    an output is rejected or sent back when
      - a count table's smallest non-zero count is 3 or less (4 to 9 pass once explained), or
      - a table has 25 columns or more and 20 rows or more (differencing risk, whatever its counts), or
      - a magnitude table's two largest contributors hold more than 95 % of a cell, or
      - it is an image from one of the three careless projects (p00, p01, p02);
    then every verdict is flipped with probability 5 % (reviewers disagree, make mistakes).

**The run.** The past (the first 60 %) is routed as the platform routes without a model: the
rules' level, medium and high reviewed, low released at once with a 10 % random sample reviewed
after release; reviewers label what they review by the hidden rule. A model is trained on those
labels exactly as ``infracalc risk train`` does (``train``: inverse-probability weights for the
sampled releases, a time-ordered split inside the past for its own metrics). On the future (the
last 40 %), three strategies are compared **at the same review load**, the load the routing with
the model produces (the higher of the rules' and the model's level, and the model's active sample
of the low ones; expected values, not one random draw):

- **rules + model**: that routing;
- **rules only**: every output the rules flag, plus a random sample of the others large enough to
  reach the same load;
- **random**: the same number of outputs drawn at random.

*Caught* is the share of the truly risky future outputs that reach a person before or after release.
A second block asks the same at today's load (rules and a fixed 10 % sample): the rules' flags, and the
budget left spent on the low-risk outputs the model ranks riskiest, against the fixed random sample
and pure random sampling.

**What this can and cannot show.** It shows that the machinery (features, weights, time-ordered
training, calibration, routing, active sampling) learns a rule that its features can express and
that the rules miss, and spends the same review effort better; and that it never catches less
than the rules at their own flags. It cannot show that real reviewers decide by anything like this
rule, that real outputs look like these, or how much better (if at all) the model does on CASD's
real history: every figure here follows from the hidden rule chosen and from the noise, and a
different rule (say one that only restates the rules' flags) would show no gain at all.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from infracalc.casd.checks import check_output
from infracalc.casd.checks.risk import RiskLevel
from infracalc.casd.risk_model import Example, ProjectHistory, RiskModel, Verdict, features
from infracalc.casd.risk_model.dataset import history_before
from infracalc.casd.risk_model.model import level_at_least
from infracalc.casd.risk_model.routing import combined_level
from infracalc.casd.risk_model.training import TrainingOptions, train

OUTPUTS = int(os.environ.get("INFRACALC_BENCH_OUTPUTS", "3000"))
SEED = int(os.environ.get("INFRACALC_BENCH_SEED", "21"))
PAST_SHARE = 0.6
SAMPLE_RATE = 0.10
NOISE = 0.05
PROJECTS = [f"p{i:02d}" for i in range(12)]
CARELESS = {"p00", "p01", "p02"}
START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = (
    ("safe", 0.33),
    ("small", 0.20),
    ("zeros", 0.08),
    ("wide", 0.10),
    ("magnitudes", 0.12),
    ("image", 0.10),
    ("text", 0.07),
)
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@dataclass(frozen=True)
class Output:
    """One synthetic output, its checks' report and the reviewers' (hidden) verdict."""

    index: int
    project: str
    kind: str
    report: dict[str, object]
    size: int
    justification: int
    risky: bool


def _table(path: Path, rows: int, columns: int, cells: list[list[int]]) -> None:
    lines = ["group," + ",".join(f"c{c}" for c in range(columns))]
    lines += [f"g{r}," + ",".join(map(str, cells[r])) for r in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def make_output(index: int, folder: Path, rng: random.Random) -> Output:
    """Write one synthetic output, check it, and apply the hidden rule (with noise)."""
    project = rng.choice(PROJECTS)
    kind = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    contributors = None
    risky = False
    path = folder / f"o{index}.csv"
    if kind in {"safe", "small", "zeros"}:
        rows, columns = rng.randint(3, 15), rng.randint(2, 8)
        cells = [[rng.randint(12, 5000) for _ in range(columns)] for _ in range(rows)]
        if kind == "small":
            smallest = rng.randint(1, 9)
            for _ in range(rng.randint(1, 4)):
                cells[rng.randrange(rows)][rng.randrange(columns)] = rng.randint(smallest, 9)
            cells[rng.randrange(rows)][rng.randrange(columns)] = smallest
            risky = smallest <= 3
        if kind == "zeros":
            for _ in range(rng.randint(1, 3)):
                cells[rng.randrange(rows)][rng.randrange(columns)] = 0
        _table(path, rows, columns, cells)
    elif kind == "wide":
        rows, columns = rng.randint(20, 60), rng.randint(25, 60)
        if rng.random() < 0.5:  # half are narrower or shorter: not risky
            rows = rng.randint(3, 19)
        cells = [[rng.randint(10, 900) for _ in range(columns)] for _ in range(rows)]
        _table(path, rows, columns, cells)
        risky = columns >= 25 and rows >= 20
    elif kind == "magnitudes":
        rows = rng.randint(2, 6)
        path.write_text("sector,revenue\n" + "".join(f"s{r},{rng.randint(10_000, 90_000)}\n" for r in range(rows)))
        contributors = {}
        worst = 0.0
        for r in range(rows):
            share = rng.uniform(0.5, 1.0)
            others = [rng.uniform(1, 10) for _ in range(rng.randint(10, 20))]
            top = share / (1 - share + 1e-9) * sum(others) if share < 0.999 else 1e6
            contributors[f"s{r}|revenue"] = [top * 0.7, top * 0.3, *others]
            worst = max(worst, (top) / (top + sum(others)))
        risky = worst > 0.95
    elif kind == "image":
        path = folder / f"o{index}.png"
        path.write_bytes(PNG)
        risky = project in CARELESS
    else:
        path = folder / f"o{index}.txt"
        path.write_text("Model fitted on the cohort; coefficients in table 3.\n")
    if rng.random() < NOISE:
        risky = not risky
    report = check_output(path, name=path.name, contributors=contributors).to_json()
    return Output(index, project, kind, report, path.stat().st_size, rng.randint(20, 600), risky)


def example(output: Output, history: ProjectHistory, verdict: Verdict | None, weight: float) -> Example:
    at = START + timedelta(hours=output.index)
    return Example(
        export_id=f"e{output.index:06d}",
        version=1,
        project_id=output.project,
        governance="INFRACALC",
        submitted_at=at,
        detected_type=str(output.report["detected_type"]),
        vector=features(
            output.report, size=output.size, justification_length=output.justification, version=1, history=history
        ),
        rules_level=RiskLevel(str(output.report["risk_level"])),
        verdict=verdict,
        decided_at=None if verdict is None else at + timedelta(minutes=30),
        weight=weight,
        released_at_once=RiskLevel(str(output.report["risk_level"])) == RiskLevel.LOW,
    )


def caught(chances: list[float], risky: list[bool]) -> float:
    total = sum(risky)
    return sum(c for c, r in zip(chances, risky, strict=True) if r) / total if total else 0.0


def learn_from_the_past(past: list[Output]) -> tuple[RiskModel, dict[str, list[tuple[datetime, bool]]]]:
    """Route the past by the rules and a fixed 10 % sample, label what reviewers saw, train on it."""
    sampler = random.Random(SEED + 1)  # noqa: S311 - synthetic data
    decided: dict[str, list[tuple[datetime, bool]]] = defaultdict(list)
    examples = []
    for output in past:
        at = START + timedelta(hours=output.index)
        history = history_before(decided[output.project], at)
        rules = RiskLevel(str(output.report["risk_level"]))
        reviewed = rules != RiskLevel.LOW or sampler.random() < SAMPLE_RATE
        weight = 1.0 if rules != RiskLevel.LOW else 1.0 / SAMPLE_RATE
        verdict = (Verdict.REJECT if output.risky else Verdict.APPROVE) if reviewed else None
        examples.append(example(output, history, verdict, weight))
        if reviewed:
            decided[output.project].append((at + timedelta(minutes=30), output.risky))
    model = train(
        examples, model_id="bench", options=TrainingOptions(sample_rate=SAMPLE_RATE), now=START + timedelta(days=365)
    )
    return model, decided


@dataclass(frozen=True)
class Future:
    """Each future output: truly risky, flagged by the rules, its chance of review with the model, its probability."""

    risky: list[bool]
    rules_flag: list[bool]
    with_model: list[float]
    probabilities: list[float]


def score_the_future(future: list[Output], model: RiskModel, decided: dict[str, list[tuple[datetime, bool]]]) -> Future:
    scored = Future([o.risky for o in future], [], [], [])
    for output in future:
        at = START + timedelta(hours=output.index)
        vector = example(output, history_before(decided[output.project], at), None, 1.0).vector
        rules = RiskLevel(str(output.report["risk_level"]))
        probability = model.probability(vector)
        level = combined_level(rules, model.level(probability), lowering_allowed=False)
        scored.probabilities.append(probability)
        scored.with_model.append(1.0 if level_at_least(level) >= 1 else model.sample_probability(probability))
        scored.rules_flag.append(level_at_least(rules) >= 1)
    if any(w < 1.0 for w, f in zip(scored.with_model, scored.rules_flag, strict=True) if f):
        raise SystemExit("the routing with the model reviewed less than the rules flag: never weaker is broken")
    return scored


def table(title: str, rows: list[tuple[str, list[float]]], risky: list[bool]) -> None:
    print(title)
    print(f"    {'strategy':<30} {'load':>7} {'caught':>8}")
    for name, chances in rows:
        print(f"    {name:<30} {sum(chances) / len(chances):>7.1%} {caught(chances, risky):>8.1%}")


def main() -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)  # noqa: S311 - synthetic data
    with tempfile.TemporaryDirectory() as folder:
        outputs = [make_output(i, Path(folder), rng) for i in range(OUTPUTS)]
    checked = time.perf_counter()
    outputs = [o for o in outputs if o.report["outcome"] != "fail"]
    cut = int(len(outputs) * PAST_SHARE)
    model, decided = learn_from_the_past(outputs[:cut])
    trained = time.perf_counter()
    f = score_the_future(outputs[cut:], model, decided)
    count = len(f.risky)
    load = sum(f.with_model) / count
    flagged = sum(f.rules_flag)
    fill = max(0.0, min(1.0, (load * count - flagged) / max(1, count - flagged)))
    today = [1.0 if flag else SAMPLE_RATE for flag in f.rules_flag]
    # At today's load: the rules' flags, then the budget left spent on the lows the model ranks riskiest.
    lows = sorted((i for i, flag in enumerate(f.rules_flag) if not flag), key=lambda i: -f.probabilities[i])
    ranked = [1.0 if flag else 0.0 for flag in f.rules_flag]
    for i in lows[: round(sum(today) - flagged)]:
        ranked[i] = 1.0

    print(
        f"risk_model: {OUTPUTS} synthetic outputs (seed {SEED}), {cut} past / {count} future, "
        f"{sum(f.risky)} truly risky in the future ({sum(f.risky) / count:.1%})"
    )
    print("  hidden rule: smallest count <= 3; or >= 25 columns and >= 20 rows; or top-two share > 95 %;")
    print(f"  or an image of {', '.join(sorted(CARELESS))}; each verdict flipped with probability {NOISE:.0%}")
    print(
        f"  model trained on {model.trained['decided']} reviewed past outputs: ROC AUC "
        f"{model.metrics['roc_auc']:.3f}, Brier {model.metrics['brier']:.3f} (its own time-ordered test, in the past)"
    )
    table(
        f"  at equal review load ({load:.1%} of future outputs seen by a person, before or after release):",
        [
            ("rules + model (routing)", f.with_model),
            ("rules only (+ random fill)", [1.0 if flag else fill for flag in f.rules_flag]),
            ("random sampling", [load] * count),
        ],
        f.risky,
    )
    table(
        f"  at today's load ({sum(today) / count:.1%}):",
        [
            ("rules + model's riskiest lows", ranked),
            ("rules + fixed 10 % (today)", today),
            ("random sampling", [sum(today) / count] * count),
        ],
        f.risky,
    )
    missed = [c for c, r, flag in zip(f.with_model, f.risky, f.rules_flag, strict=True) if r and not flag]
    if missed:
        print(
            f"  of the {len(missed)} risky outputs the rules leave at low risk, the model routing reviews "
            f"{sum(missed) / len(missed):.1%} (rules only at that load: {fill:.1%})"
        )
    print(
        f"  time: checks {checked - started:.1f} s, training {trained - checked:.1f} s, "
        f"scoring {time.perf_counter() - trained:.2f} s ({count} outputs)"
    )


if __name__ == "__main__":
    main()
