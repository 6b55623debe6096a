"""Frozen artifacts passed between stages. Stages never mutate what they receive."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Reasons a row has no clustered text; they appear in the output's text_issue column.
ISSUE_MISSING = "missing"
ISSUE_EMPTY = "empty"
ISSUE_TOO_SHORT = "too short"
ISSUE_TRUNCATED = "truncated"
NOISE_LABEL = "Unclustered"
FINGERPRINT_BLOCK = 100_000  # rows hashed at a time


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table: values, column names and dtypes, in order."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(str(frame.shape).encode())
    # row hashes are independent of each other: hashing in blocks gives the same digest as one
    # pass, without the per-row objects of a 1M-row table all at once
    for start in range(0, len(frame), FINGERPRINT_BLOCK):
        block = frame.iloc[start : start + FINGERPRINT_BLOCK]
        try:
            values = pd.util.hash_pandas_object(block, index=False).to_numpy()
        except TypeError:  # unhashable cells (lists from Parquet): hash their text
            values = pd.util.hash_pandas_object(block.astype(str), index=False).to_numpy()
        digest.update(values.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Table:
    """The user's table as loaded: every row and column, untouched."""

    frame: pd.DataFrame
    name: str = "table"
    fingerprint: str = ""
    source_sha256: str = ""  # hash of the file's bytes, when it came from a file
    encoding: str = ""
    delimiter: str = ""
    notes: tuple[str, ...] = ()  # what the reader had to do (e.g. malformed lines repaired)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, name: str = "table", **extra: Any) -> Table:
        return cls(frame=frame, name=name, fingerprint=frame_fingerprint(frame), **extra)

    def __post_init__(self):
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", frame_fingerprint(self.frame))


@dataclass(frozen=True)
class Corpus:
    """Clean texts and the mapping from every input row to a distinct text.

    ``row_to_unique[i]`` is the index into ``texts`` for row ``i``, or -1 when the row
    has no usable text (its reason is in ``issues[i]``).
    """

    table: Table
    text_column: str | tuple[str, ...]  # several columns: joined with a newline, in this order
    original: np.ndarray  # object: the text cell as given, per row
    clean: np.ndarray  # object: the clean text per row ("" for rows without text)
    issues: np.ndarray  # object: "" or a reason, per row
    texts: np.ndarray  # object: distinct clean texts, in order of first appearance
    row_to_unique: np.ndarray  # int64 per row
    counts: np.ndarray  # int64 per distinct text: how many rows carry it

    @property
    def n_rows(self) -> int:
        return len(self.row_to_unique)

    @property
    def n_texts(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class Embeddings:
    """One float32 vector per distinct text (L2-normalised)."""

    vectors: np.ndarray
    model: str  # identity of the model that made them (name + version + backend)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class Projection:
    """Coordinates for clustering (``coords``) and a 2-D ``layout`` for the map."""

    coords: np.ndarray
    layout: np.ndarray
    method: str  # "umap", "pca" (tiny corpora) or "none" (reduce switched off)
    n_neighbors: int = 0
    fitted_on: int = 0  # UMAP was fitted on this many sampled points, the rest placed; 0 = all


@dataclass(frozen=True)
class Clustering:
    """One cluster id per distinct text; -1 is noise. Ids are numbered by size (0 = largest)."""

    labels: np.ndarray  # int64, after optional outlier assignment
    raw_labels: np.ndarray  # int64, as the algorithm gave them
    probabilities: np.ndarray  # float32 membership strength (1.0 for k-means)
    algorithm: str
    resolved: dict[str, Any] = field(default_factory=dict)  # automatic settings as chosen
    # quality.readouts: clusters, noise_share, separation, stability (+ how each is measured)
    readouts: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(len(set(self.labels.tolist()) - {-1}))


@dataclass(frozen=True)
class LabelFallback:
    """A cluster that kept its keyword label although label.method = "llm", and why."""

    cluster: int
    reason: str
    kind: str = "failed"  # "failed": the call failed (a re-run retries it); "capped": not sent


@dataclass(frozen=True)
class Labels:
    """Per-cluster summary: one row per cluster id (including -1 when there is noise).

    Columns: id, label, size, share, keywords (list[str]), representatives (list[str]),
    description ("" unless a language model wrote one), source ("keywords" or "llm").
    """

    clusters: pd.DataFrame
    method: str = "keywords"
    fallbacks: tuple[LabelFallback, ...] = ()
    llm: dict[str, Any] = field(default_factory=dict)  # model, base_url, calls made / from cache

    @property
    def complete(self) -> bool:
        """False when a call failed: the runner then does not cache it, so a re-run retries."""
        return not any(f.kind == "failed" for f in self.fallbacks)

    def label_of(self) -> dict[int, str]:
        return dict(zip(self.clusters["id"].tolist(), self.clusters["label"].tolist(), strict=True))
