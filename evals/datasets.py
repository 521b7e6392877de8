"""Evaluation datasets: versioned JSONL files described by ``datasets/manifest.toml``.

Each line of a dataset file is one example::

    {"id": "research-01", "inputs": {"goal": "..."}, "outputs": {...}, "metadata": {...}}

``outputs`` holds the references the evaluators read: ``plan`` (a
:class:`~evals.evaluators.plan.PlanSpec`), ``trajectory`` (``agents``, ``orderings``),
``answer``/``rubric``, ``key_facts``/``forbidden``, ``sources`` (knowledge-base files),
``actions`` (customer-database side effects) and ``code`` (a
:class:`~evals.evaluators.code.CodeSpec` with hidden tests). The manifest gives each
dataset a version, a kind, its evaluators and its score thresholds.

``metadata.split`` puts an example in ``dev`` (tune on it) or ``test`` (report it; never
tune on its failures case by case). ``metadata.paraphrase_of`` marks a paraphrase: the
same request worded differently, with exactly the references of the example it names;
the loader refuses a paraphrase whose references differ, so the two always measure the
same thing.

Examples become langsmith ``Example`` objects with ids derived from the dataset name,
version, content digest and example id — stable across runs of the same data, new
whenever the data changes — which is what ``evaluate`` needs offline and what a
LangSmith dataset needs to stay immutable per version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DATASETS_DIR = Path(__file__).parent / "datasets"
MANIFEST = DATASETS_DIR / "manifest.toml"
ID_NAMESPACE = uuid.UUID("0b6f1c52-7d3e-4d61-9a43-6a1f0c9e2b17")
"""Namespace of the examples' uuid5 ids."""
LANGSMITH_PREFIX = "agent-orchestrator"

Kind = Literal["planning", "run"]
Split = Literal["dev", "test"]
SPLITS: tuple[Split, ...] = ("dev", "test")
"""The splits an example can be in."""
SplitChoice = Literal["dev", "test", "all"]
"""What a run selects: one split or every example."""


class DatasetError(ValueError):
    """A dataset file or the manifest is invalid; the message names the file and line."""


class EvalExample(BaseModel):
    """One example: the goal and the references its evaluators need."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    inputs: dict[str, Any]
    outputs: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _has_goal(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(v.get("goal"), str) or not v["goal"].strip():
            raise ValueError("inputs.goal must be a non-empty string")
        files = v.get("files")
        if files is not None:
            if not isinstance(files, dict) or not all(
                isinstance(k, str) and isinstance(t, str) for k, t in files.items()
            ):
                raise ValueError("inputs.files must map file names to text")
            for name in files:
                parts = Path(name).parts
                if not parts or Path(name).is_absolute() or ".." in parts:
                    raise ValueError(f"inputs.files: {name!r} is not a relative workspace path")
        return v

    @field_validator("metadata")
    @classmethod
    def _split_and_origin(cls, v: dict[str, Any]) -> dict[str, Any]:
        if "split" in v and v["split"] not in SPLITS:
            raise ValueError(f"metadata.split must be one of {', '.join(SPLITS)}")
        if "paraphrase_of" in v and not isinstance(v["paraphrase_of"], str):
            raise ValueError("metadata.paraphrase_of must be an example id")
        return v

    @property
    def goal(self) -> str:
        """The goal the run starts from."""
        return str(self.inputs["goal"])

    @property
    def split(self) -> Split | None:
        """``dev`` or ``test``; None for an example outside both (only in a user's file)."""
        value = self.metadata.get("split")
        return value if value in SPLITS else None

    @property
    def paraphrase_of(self) -> str | None:
        """Id of the example this one rewords (same references), or None for an original."""
        value = self.metadata.get("paraphrase_of")
        return str(value) if value else None


class Thresholds(BaseModel):
    """Gates on mean scores: ``min`` for quality, ``max`` for cost-like metrics."""

    model_config = ConfigDict(extra="forbid")

    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)


class DatasetEntry(BaseModel):
    """A dataset's manifest entry."""

    model_config = ConfigDict(extra="forbid")

    file: str
    version: int = Field(ge=1)
    kind: Kind
    description: str = ""
    evaluators: list[str]
    thresholds: Thresholds = Field(default_factory=Thresholds)
    heldout: bool = False
    """Written once and never tuned on: every example is in ``test`` and a run reports
    each goal's pass/fail."""


@dataclass
class Dataset:
    """A loaded dataset: its manifest entry, examples and content digest."""

    name: str
    entry: DatasetEntry
    examples: list[EvalExample]
    digest: str
    """First 12 hex digits of the file's sha256."""
    path: Path
    split: SplitChoice = "all"
    """The split these examples were selected from."""

    @property
    def version(self) -> str:
        """``v<version>-<digest>``: what results and LangSmith dataset names carry."""
        return f"v{self.entry.version}-{self.digest}"

    @property
    def kind(self) -> Kind:
        return self.entry.kind

    @property
    def langsmith_name(self) -> str:
        """Name of this exact version's dataset in LangSmith."""
        return f"{LANGSMITH_PREFIX}/{self.name}@{self.version}"

    def example_uuid(self, example: EvalExample) -> uuid.UUID:
        """The example's stable id for this dataset version."""
        return uuid.uuid5(ID_NAMESPACE, f"{self.name}@{self.version}:{example.id}")

    def select(
        self, ids: Sequence[str] = (), limit: int | None = None, split: SplitChoice = "all"
    ) -> Dataset:
        """A copy with only the examples of ``split`` (``all``: every one) whose id is in
        ``ids`` (all if empty), at most ``limit``."""
        if split != "all" and split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; use dev, test or all")
        in_split = [e for e in self.examples if split == "all" or e.split == split]
        if ids:
            missing = sorted(set(ids) - {e.id for e in self.examples})
            if missing:
                raise DatasetError(f"{self.name}: no example(s) {missing}")
            outside = sorted(set(ids) - {e.id for e in in_split})
            if outside:
                raise DatasetError(
                    f"{self.name}: example(s) {outside} are not in the {split} split"
                )
        chosen = [e for e in in_split if not ids or e.id in ids]
        if limit is not None:
            chosen = chosen[: max(limit, 0)]
        return Dataset(self.name, self.entry, chosen, self.digest, self.path, split)

    def split_counts(self) -> dict[str, int]:
        """Examples per split (``none`` for examples outside both), paraphrases included."""
        counts: dict[str, int] = {}
        for e in self.examples:
            key = e.split or "none"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def to_langsmith(self, dataset_id: uuid.UUID | None = None) -> list[Any]:
        """The examples as langsmith ``Example`` objects (what ``evaluate`` needs)."""
        from langsmith.schemas import Example

        ds_id = dataset_id or uuid.uuid5(ID_NAMESPACE, self.langsmith_name)
        return [
            Example(
                id=self.example_uuid(e),
                dataset_id=ds_id,
                inputs=dict(e.inputs),
                outputs=dict(e.outputs),
                metadata={
                    **e.metadata,
                    "example_id": e.id,
                    "split": e.split,
                    "dataset": self.name,
                    "dataset_version": self.version,
                },
            )
            for e in self.examples
        ]


def load_manifest(path: Path = MANIFEST) -> dict[str, DatasetEntry]:
    """Dataset name -> manifest entry; raises DatasetError naming the bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"{path}: {exc}") from None
    out: dict[str, DatasetEntry] = {}
    for name, body in (raw.get("datasets") or {}).items():
        try:
            out[name] = DatasetEntry.model_validate(body)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DatasetError(f"{path}: datasets.{name}.{where}: {first['msg']}") from None
    return out


def dataset_names(path: Path = MANIFEST) -> list[str]:
    """Names of the datasets in the manifest, in file order."""
    return list(load_manifest(path))


def is_dataset_path(name: str) -> bool:
    """Whether ``name`` names a user's JSONL file rather than a shipped dataset."""
    return name.endswith(".jsonl") or "/" in name or Path(name).is_file()


EVALUATORS_BY_KEY = {
    "plan": ["plan_validity", "plan_properties"],
    "trajectory": ["trajectory"],
    "code": ["code_tests"],
    "key_facts": ["key_facts"],
    "sources": ["source_recall"],
    "actions": ["actions"],
}
"""For a user's file: the evaluators its examples' reference outputs call for."""


def _file_entry(path: Path) -> DatasetEntry:
    """A manifest entry for a user's JSONL file: evaluators from the reference keys its
    examples use, ``planning`` when they only give plans; no thresholds (scores reported)."""
    keys: set[str] = set()
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            # a bad line is reported with its number when the examples are validated
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                keys |= set((json.loads(line).get("outputs") or {}).keys())
    kind: Kind = "planning" if keys and keys <= {"plan"} else "run"
    evaluators = [e for key, names in EVALUATORS_BY_KEY.items() if key in keys for e in names]
    if kind == "planning":
        evaluators.append("planner_first_try")
    return DatasetEntry(
        file=path.name, version=1, kind=kind, evaluators=[*evaluators, "run_metrics"]
    )


def load_dataset(name: str, manifest: Path = MANIFEST) -> Dataset:
    """Load and validate one dataset — a shipped name or a path to a JSONL file in the same
    format; raises DatasetError (unknown name, missing file, bad line)."""
    if is_dataset_path(name):
        path = Path(name).expanduser()
        if not path.is_file():
            raise DatasetError(f"{path}: no such dataset file")
        entry = _file_entry(path)
        name = path.stem
    else:
        entries = load_manifest(manifest)
        if name not in entries:
            raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(entries)}")
        entry = entries[name]
        path = manifest.parent / entry.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: {exc}") from None
    examples: list[EvalExample] = []
    seen: set[str] = set()
    for lineno, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            example = EvalExample.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{lineno}: not JSON: {exc}") from None
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(line)"
            raise DatasetError(f"{path}:{lineno}: {where}: {first['msg']}") from None
        if example.id in seen:
            raise DatasetError(f"{path}:{lineno}: duplicate id {example.id!r}")
        seen.add(example.id)
        examples.append(example)
    problems = paraphrase_problems(examples)
    if problems:
        raise DatasetError(f"{path}: {problems[0]}")
    digest = hashlib.sha256(data).hexdigest()[:12]
    return Dataset(name, entry, examples, digest, path)


def paraphrase_problems(examples: Sequence[EvalExample]) -> list[str]:
    """Why a paraphrase does not measure what its original does (empty = every one does):
    it must name an original in the same file, have exactly its references, be in the same
    split, and not be a paraphrase of a paraphrase."""
    by_id = {e.id: e for e in examples}
    problems: list[str] = []
    for e in examples:
        origin_id = e.paraphrase_of
        if origin_id is None:
            continue
        origin = by_id.get(origin_id)
        if origin is None:
            problems.append(f"{e.id}: paraphrase_of names no example {origin_id!r}")
        elif origin.paraphrase_of is not None:
            problems.append(f"{e.id}: paraphrases {origin_id!r}, itself a paraphrase")
        elif e.outputs != origin.outputs:
            problems.append(f"{e.id}: its references differ from those of {origin_id!r}")
        elif e.split != origin.split:
            problems.append(
                f"{e.id}: is in split {e.split}, its original {origin_id!r} in {origin.split}"
            )
        elif e.goal.strip() == origin.goal.strip():
            problems.append(f"{e.id}: has the same wording as {origin_id!r}")
    return problems


def reference_problems(
    dataset: Dataset, agents: Sequence[str], kb_dir: Path | None = None
) -> list[str]:
    """What is wrong with the dataset's references (empty = consistent): malformed plan
    or code specs, unknown agents, sources missing from the knowledge base."""
    from evals.evaluators.code import CodeSpec
    from evals.evaluators.plan import PlanSpec

    problems: list[str] = []
    known = set(agents)
    for ex in dataset.examples:
        where = f"{dataset.name}/{ex.id}"
        out = ex.outputs
        named: set[str] = set()
        if "plan" in out:
            try:
                named |= PlanSpec.model_validate(out["plan"]).agents_named()
            except ValidationError as err:
                problems.append(f"{where}: plan: {err.errors()[0]['msg']}")
        if "code" in out:
            try:
                CodeSpec.model_validate(out["code"])
            except ValidationError as err:
                problems.append(f"{where}: code: {err.errors()[0]['msg']}")
        traj = out.get("trajectory") or {}
        named |= set(traj.get("agents") or [])
        for pair in traj.get("orderings") or []:
            named |= set(pair)
        for agent in sorted(named - known):
            problems.append(f"{where}: unknown agent {agent!r}")
        if kb_dir is not None:
            given = set((ex.inputs.get("files") or {}).keys())
            for source in out.get("sources") or []:
                if source not in given and not (kb_dir / source).is_file():
                    problems.append(f"{where}: source {source!r} is not in {kb_dir}")
        if dataset.kind == "planning" and "plan" not in out:
            problems.append(f"{where}: a planning example needs outputs.plan")
    return problems
