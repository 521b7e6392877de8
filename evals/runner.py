"""Run a dataset through the orchestrator with langsmith's ``aevaluate``, score it, gate it.

Offline by default: examples are langsmith ``Example`` objects built from the JSONL files
and the client is a local stand-in (no key, no tracing, ``upload_results=False``), so
nothing leaves the machine. With ``LANGSMITH_API_KEY`` set (and ``offline`` not asked
for), the dataset version is created in LangSmith if missing and the run is recorded as
a LangSmith experiment.

The report has one row per example (its scores and comments, its split, whether it
passed), the mean, minimum and maximum of every score, the dataset's threshold gates and,
when paraphrases ran with their originals, how far their scores moved; it is written as
JSON and ``passed`` is False when a mean misses its threshold.

An example *passes* when every outcome check it has (:data:`OUTCOME_KEYS`: hidden tests,
a project's files, key facts, forbidden statements, cited sources, database changes) scores 1; plan,
trajectory and cost scores describe the route, not the outcome, and do not count.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel

from core.models.structured import StructuredStats, structured_stats
from core.settings import Settings
from evals.datasets import Dataset, SplitChoice, load_dataset
from evals.evaluators import EVALUATOR_NAMES, JUDGE_EVALUATORS, JudgeSource, build_evaluators
from evals.evaluators.metrics import METRIC_KEYS
from evals.target import TargetConfig, make_target

OFFLINE_API_KEY = "offline-no-upload"
"""Placeholder key of the offline client (never sent: nothing is uploaded)."""
PASSED_KEY = "passed"
"""Summary key: the share of examples that passed (thresholds may gate it)."""
OUTCOME_KEYS = ("code_tests", "project_files", "key_facts", "no_forbidden", "source_recall", "actions")
"""Scores that check what a run produced (not how it got there): an example passes when
each of these it has is 1."""


@dataclass
class ExampleResult:
    """One example's outcome."""

    id: str
    goal: str
    scores: dict[str, float | None]
    comments: dict[str, str]
    status: str = ""
    error: str | None = None
    answer: str = ""
    agents: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    thread_id: str = ""
    split: str | None = None
    """``dev`` or ``test`` (None: the example has no split)."""
    paraphrase_of: str | None = None
    """The original's id when this example is a paraphrase."""

    @property
    def outcome(self) -> dict[str, float]:
        """The outcome checks this example has, with their scores. A score of None is "not
        applicable" (``evaluators.base.not_applicable``: the example has no reference for
        that check, e.g. no hidden tests), so it is not one of its checks."""
        return {k: v for k in OUTCOME_KEYS if (v := self.scores.get(k)) is not None}

    @property
    def passed(self) -> bool | None:
        """Every outcome check passes; None when it has no outcome check (a planning
        example)."""
        outcome = self.outcome
        if not outcome:
            return None
        return all(v >= 1.0 for v in outcome.values())


@dataclass
class Stat:
    """A score over the examples that have it."""

    mean: float
    min: float
    max: float
    n: int


@dataclass
class Gate:
    """One threshold check."""

    key: str
    bound: str
    """``min`` (the mean must reach it) or ``max`` (the mean must not exceed it)."""
    threshold: float
    value: float | None
    passed: bool


@dataclass
class EvalReport:
    """Everything one evaluation produced."""

    dataset: str
    dataset_version: str
    kind: str
    model: str
    judge: str | None
    experiment: str
    uploaded: bool
    started_at: str
    duration_s: float
    examples: list[ExampleResult]
    summary: dict[str, Stat]
    gates: list[Gate]
    structured: dict[str, int] = field(default_factory=dict)
    """The product's structured calls during the evaluation (this process): calls, model
    requests, invalid outputs, repair retries, failures, and calls per method."""
    split: str = "all"
    """The split the examples were selected from: ``dev``, ``test`` or ``all``."""
    paraphrase_gaps: dict[str, float] = field(default_factory=dict)
    """Per score: mean over the paraphrases minus mean over their originals (only the
    pairs that both ran); empty when no pair ran."""

    @property
    def passed(self) -> bool:
        """True when every gate passed."""
        return all(g.passed for g in self.gates)

    @property
    def examples_passed(self) -> tuple[int, int]:
        """``(examples that passed, examples with outcome checks)``."""
        judged = [e.passed for e in self.examples if e.passed is not None]
        return sum(1 for p in judged if p), len(judged)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        body = asdict(self)
        for row, ex in zip(body["examples"], self.examples, strict=True):
            row["passed"] = ex.passed
        done, judged = self.examples_passed
        return {**body, "passed": self.passed, "examples_passed": done, "examples_judged": judged}


# -- scoring -------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def summarize(examples: Sequence[ExampleResult]) -> dict[str, Stat]:
    """Mean/min/max of every score over the examples that have one (None = not applicable)."""
    values: dict[str, list[float]] = {}
    for ex in examples:
        for key, value in ex.scores.items():
            if value is not None:
                values.setdefault(key, []).append(value)
    return {
        key: Stat(
            mean=round(sum(v) / len(v), 4), min=round(min(v), 4), max=round(max(v), 4), n=len(v)
        )
        for key, v in values.items()
    }


def pass_rate(examples: Sequence[ExampleResult]) -> Stat | None:
    """The share of examples that passed, over those with outcome checks (None: none has)."""
    judged = [1.0 if e.passed else 0.0 for e in examples if e.passed is not None]
    if not judged:
        return None
    return Stat(
        mean=round(sum(judged) / len(judged), 4), min=min(judged), max=max(judged), n=len(judged)
    )


def paraphrase_gaps(examples: Sequence[ExampleResult]) -> dict[str, float]:
    """Per quality score: mean over the paraphrases minus mean over their originals, over
    the pairs where both ran and both have the score (cost metrics are left out)."""
    by_id = {e.id: e for e in examples}
    pairs = [(e, by_id[e.paraphrase_of]) for e in examples if e.paraphrase_of in by_id]
    gaps: dict[str, float] = {}
    keys = {k for p, o in pairs for k in p.scores if k in o.scores and k not in METRIC_KEYS}
    for key in sorted(keys):
        values = [
            (p.scores[key], o.scores[key])
            for p, o in pairs
            if p.scores.get(key) is not None and o.scores.get(key) is not None
        ]
        if values:
            mean_p = sum(float(v[0] or 0) for v in values) / len(values)
            mean_o = sum(float(v[1] or 0) for v in values) / len(values)
            gaps[key] = round(mean_p - mean_o, 4)
    return gaps


def gates(dataset: Dataset, summary: dict[str, Stat]) -> list[Gate]:
    """The dataset's thresholds checked against the summary; a gated score nobody produced fails."""
    out = []
    for key, threshold in dataset.entry.thresholds.min.items():
        stat = summary.get(key)
        out.append(
            Gate(
                key,
                "min",
                threshold,
                stat.mean if stat else None,
                bool(stat and stat.mean >= threshold),
            )
        )
    for key, threshold in dataset.entry.thresholds.max.items():
        stat = summary.get(key)
        out.append(
            Gate(
                key,
                "max",
                threshold,
                stat.mean if stat else None,
                bool(stat and stat.mean <= threshold),
            )
        )
    return out


def score_order(keys: Sequence[str]) -> list[str]:
    """Score keys in report order: quality scores first, then the metrics."""
    metrics = [k for k in METRIC_KEYS if k in keys]
    return [k for k in keys if k not in metrics] + metrics


# -- running -------------------------------------------------------------------------------


def judge_model(settings: Settings, name: str | None = None) -> BaseChatModel:
    """The judge: ``core.models.chat_model(settings, "judge")``, optionally with the
    judge role pointed at model ``name``."""
    from core.models import chat_model

    if name:
        settings = settings.with_overrides({"roles": {"judge": name}})
    return chat_model(settings, "judge")


def offline_client() -> Any:
    """A langsmith client that never contacts the API (no key, no tracing, no upload)."""
    from langsmith import Client

    return Client(
        api_key=OFFLINE_API_KEY, info={}, tracing_sampling_rate=0.0, auto_batch_tracing=False
    )


def sync_to_langsmith(client: Any, dataset: Dataset) -> Any:
    """Create this dataset version in LangSmith if missing (adding any missing examples);
    return its id."""
    name = dataset.langsmith_name
    if client.has_dataset(dataset_name=name):
        remote = client.read_dataset(dataset_name=name)
    else:
        remote = client.create_dataset(
            name,
            description=dataset.entry.description,
            metadata={
                "version": dataset.version,
                "kind": dataset.kind,
                "source": str(dataset.path.name),
            },
        )
    present = {ex.id for ex in client.list_examples(dataset_id=remote.id)}
    missing = [ex for ex in dataset.to_langsmith(remote.id) if ex.id not in present]
    if missing:
        client.create_examples(
            dataset_id=remote.id,
            examples=[
                {"id": ex.id, "inputs": ex.inputs, "outputs": ex.outputs, "metadata": ex.metadata}
                for ex in missing
            ],
        )
    return remote.id


def _row_result(row: Any) -> ExampleResult:
    example, run = row["example"], row["run"]
    outputs = run.outputs or {}
    scores: dict[str, float | None] = {}
    comments: dict[str, str] = {}
    for result in row["evaluation_results"]["results"]:
        scores[result.key] = _number(result.score)
        if result.comment:
            comments[result.key] = str(result.comment)
    meta = example.metadata or {}
    return ExampleResult(
        id=str(meta.get("example_id") or example.id),
        goal=str(example.inputs.get("goal", "")),
        scores=scores,
        comments=comments,
        status=str(outputs.get("status") or ("error" if run.error else "")),
        error=outputs.get("error") or run.error,
        answer=str(outputs.get("answer") or ""),
        agents=list(outputs.get("agents") or []),
        plan=list(outputs.get("plan") or []),
        thread_id=str(outputs.get("thread_id") or ""),
        split=meta.get("split"),
        paraphrase_of=meta.get("paraphrase_of"),
    )


async def run_eval(
    dataset_name: str,
    settings: Settings,
    *,
    model: str | None = None,
    judge: BaseChatModel | None = None,
    judge_name: str | None = None,
    example_ids: Sequence[str] = (),
    limit: int | None = None,
    split: SplitChoice = "all",
    concurrency: int = 1,
    timeout_s: float | None = None,
    offline: bool | None = None,
    keep_runs: bool = False,
    checkpointer: Literal["memory", "sqlite"] = "memory",
    work_dir: Path | None = None,
    experiment_prefix: str | None = None,
) -> EvalReport:
    """Evaluate ``dataset_name`` and return the report (nothing is printed or written).

    ``judge`` is used as the judge model when given (tests pass a scripted one); otherwise
    it is built from the settings (``judge_name`` or the ``judge`` role). ``offline`` None
    means: offline unless ``LANGSMITH_API_KEY`` is set. Each example runs in its own data
    directory under ``work_dir`` (default ``data_dir/evals/runs/…``), removed afterwards
    unless ``keep_runs``; ``checkpointer="sqlite"`` keeps a checkpoint file in each.
    """
    from langsmith.evaluation import aevaluate

    dataset = load_dataset(dataset_name).select(example_ids, limit, split)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%S")
    root = (
        work_dir
        or Path(settings.data_dir) / "evals" / "runs" / f"{dataset.name}-{stamp}-{os.getpid()}"
    )
    target_config = TargetConfig(
        root=root,
        model=model,
        plan_only=dataset.kind == "planning",
        timeout_s=timeout_s,
        checkpointer=checkpointer,
    )
    run_settings = target_config.settings(settings)  # validates the model name first
    names = [n for n in EVALUATOR_NAMES if n in dataset.entry.evaluators]
    needs_judge = bool(JUDGE_EVALUATORS & set(names))
    judge_source: JudgeSource | None = judge
    if needs_judge and judge is None:
        judge_model(run_settings, judge_name)  # fail early on a bad judge model name

        def judge_source() -> BaseChatModel:  # per verdict: survives a restarted local server
            return judge_model(run_settings, judge_name)

    judge_label = (
        (getattr(judge, "model_name", None) or type(judge).__name__)
        if judge is not None
        else (judge_name or run_settings.model_name_for("judge"))
    )
    from agents.registry import AgentRegistry

    evaluators = build_evaluators(
        names,
        judge=judge_source,
        agents=AgentRegistry.load(run_settings).names(),
        max_tasks=run_settings.limits.max_tasks,
    )
    upload = bool(os.environ.get("LANGSMITH_API_KEY")) if offline is None else not offline
    if upload:
        from langsmith import Client

        client = Client()
        examples = dataset.to_langsmith(sync_to_langsmith(client, dataset))
    else:
        client = offline_client()
        examples = dataset.to_langsmith()
    model_name = run_settings.model_name_for("supervisor")
    counted = structured_stats()
    begin = time.monotonic()
    try:
        # langsmith prints "Starting evaluation…" (with the experiment URL when uploading)
        # to stdout; keep stdout for the report. Offline, the line says nothing useful.
        sink = sys.stderr if upload else io.StringIO()
        with contextlib.redirect_stdout(sink), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*upload_results.*")
            results = await aevaluate(
                make_target(target_config),
                data=examples,
                evaluators=evaluators,
                client=client,
                upload_results=upload,
                max_concurrency=max(concurrency, 1),
                experiment_prefix=experiment_prefix or f"{dataset.name}-{model_name}",
                metadata={
                    "dataset_version": dataset.version,
                    "model": model_name,
                    "judge": str(judge_label),
                },
                description=f"orchestrator eval of {dataset.name} ({dataset.version}) on {model_name}",
            )
            rows = [_row_result(row) async for row in results]
        experiment = results.experiment_name
    finally:
        if not keep_runs:
            shutil.rmtree(root, ignore_errors=True)
    order = {ex.id: i for i, ex in enumerate(dataset.examples)}
    rows.sort(key=lambda r: order.get(r.id, len(order)))
    summary = summarize(rows)
    summary = {k: summary[k] for k in score_order(list(summary))}
    if (share := pass_rate(rows)) is not None:
        summary[PASSED_KEY] = share
    return EvalReport(
        dataset=dataset.name,
        dataset_version=dataset.version,
        kind=dataset.kind,
        model=model_name,
        judge=str(judge_label) if needs_judge else None,
        experiment=experiment,
        uploaded=upload,
        started_at=started.isoformat(timespec="seconds"),
        duration_s=round(time.monotonic() - begin, 3),
        examples=rows,
        summary=summary,
        gates=gates(dataset, summary),
        structured=structured_since(counted),
        split=dataset.split,
        paraphrase_gaps=paraphrase_gaps(rows),
    )


def structured_since(before: StructuredStats) -> dict[str, int]:
    """The structured calls made since ``before`` was taken (JSON-ready)."""
    now = structured_stats()
    counts = {
        "calls": now.calls - before.calls,
        "model_calls": now.model_calls - before.model_calls,
        "invalid_outputs": now.invalid_outputs - before.invalid_outputs,
        "repair_retries": now.repair_retries - before.repair_retries,
        "failures": now.failures - before.failures,
    }
    for method, n in now.by_method.items():
        counts[f"by_method.{method}"] = n - before.by_method.get(method, 0)
    return counts


# -- output --------------------------------------------------------------------------------


def results_payload(reports: Sequence[EvalReport]) -> dict[str, Any]:
    """The JSON results of one invocation: overall verdict and each dataset's report."""
    return {"passed": all(r.passed for r in reports), "datasets": [r.to_json() for r in reports]}


def write_json(payload: dict[str, Any], path: Path) -> Path:
    """Write ``payload`` as JSON (creating directories); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def render_table(report: EvalReport) -> Any:
    """A rich table: one row per score with mean, min, max, n, threshold and verdict."""
    from rich.table import Table

    table = Table(
        title=f"{report.dataset} {report.dataset_version} · split {report.split} · model {report.model}"
        + (f" · judge {report.judge}" if report.judge else "")
        + f" · {len(report.examples)} examples · {report.duration_s:.1f}s"
    )
    for column in ("score", "mean", "min", "max", "n", "threshold", "result"):
        table.add_column(column, justify="left" if column in ("score", "result") else "right")
    by_key = {g.key: g for g in report.gates}
    keys = list(report.summary) + [k for k in by_key if k not in report.summary]
    for key in keys:
        stat = report.summary.get(key)
        gate = by_key.get(key)
        threshold = f"{'≥' if gate.bound == 'min' else '≤'} {gate.threshold:g}" if gate else ""
        verdict = ("[green]pass[/green]" if gate.passed else "[red]FAIL[/red]") if gate else ""
        if stat is None:
            table.add_row(key, "—", "—", "—", "0", threshold, verdict)
        else:
            table.add_row(
                key,
                f"{stat.mean:.3g}",
                f"{stat.min:.3g}",
                f"{stat.max:.3g}",
                str(stat.n),
                threshold,
                verdict,
            )
    return table


SHORT_NAMES = {
    "code_tests": "tests",
    "key_facts": "facts",
    "no_forbidden": "forbid",
    "source_recall": "cited",
    "actions": "db",
}
"""Column headers of the per-example table (it must fit 80 columns)."""


def render_examples(report: EvalReport) -> Any:
    """A rich table with one row per example: its split, its outcome checks, status,
    latency and whether it passed (every outcome check 1)."""
    from rich import box
    from rich.table import Table

    keys = [k for k in OUTCOME_KEYS if any(k in e.scores for e in report.examples)]
    done, judged = report.examples_passed
    table = Table(
        title=f"{report.dataset} per goal · {done}/{judged} passed · split {report.split} · "
        f"model {report.model} · {report.started_at}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 0),
        collapse_padding=True,
        show_edge=False,
    )
    table.add_column("example", no_wrap=True)
    table.add_column("split", no_wrap=True)
    for key in keys:
        table.add_column(SHORT_NAMES[key], justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("s", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for ex in report.examples:
        cells = [f"{ex.scores[k]:.2g}" if ex.scores.get(k) is not None else "—" for k in keys]
        latency = ex.scores.get("latency_s")
        verdict = {True: "[green]pass[/green]", False: "[red]FAIL[/red]", None: "—"}[ex.passed]
        table.add_row(
            ex.id,
            ex.split or "—",
            *cells,
            ex.status or "—",
            f"{latency:.0f}" if latency is not None else "—",
            verdict,
        )
    return table
