"""The analyst's edits (rename, merge) as a log applied on top of a pipeline result.

Edits name clusters by their members (distinct-text indices), never by id, so after a
re-run with other settings an edit still applies to the cluster that has the same members, or
nearly the same (``MATCH``: says so), and says plainly when no cluster matches any more. Indices
only mean the same texts within one corpus (text column and preparation), so an edit remembers
its corpus key and never applies to another corpus's clusters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from .cache import Cache
from .context import detached
from .errors import InputError
from .result import Result
from .stages import label as label_stage
from .types import NOISE_LABEL

T = TypeVar("T")

# Jaccard overlap of distinct texts (each text once, however many rows carry it) that makes a
# cluster "the same" after a re-run: a small slider change that moves a few texts keeps the
# edit (said to match approximately), a cluster that kept only part of its texts does not
MATCH = 0.8
MAX_LABEL = 80
# Merged clusters' keywords and examples by result and edits, and the word counts per text they
# are scored on (the label stage's piece), by their keys: the Explore page asks on every rerun,
# and counting the words of 100,000 texts again takes seconds
SUMMARIES_KEPT = 8
PIECES_KEPT = 2
_SUMMARIES: dict[tuple[str, str], dict[int, tuple[str, str]]] = {}
_PIECES: dict[tuple[str, str], Any] = {}


def clean_name(text: str) -> str:
    """A name the analyst typed for a cluster: one line, at most MAX_LABEL characters, not empty."""
    label = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()
    label = re.sub(r"\s+", " ", label)
    if not label:
        raise InputError("a cluster name cannot be empty", hint="type a name", stage="edit")
    return label[:MAX_LABEL]


@dataclass(frozen=True)
class Edit:
    op: str  # "rename" or "merge"
    groups: tuple[tuple[int, ...], ...]  # members of each cluster the edit is about
    label: str
    was: tuple[str, ...] = ()  # the clusters' labels when the edit was made
    corpus: str = ""  # the corpus key the groups index into; "" = unknown (older edit logs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "groups": [list(g) for g in self.groups],
            "label": self.label,
            "was": list(self.was),
            "corpus": self.corpus,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edit:
        return cls(
            op=str(data["op"]),
            groups=tuple(tuple(int(i) for i in g) for g in data["groups"]),
            label=str(data["label"]),
            was=tuple(str(w) for w in data.get("was", ())),
            corpus=str(data.get("corpus") or ""),
        )

    def describe(self) -> str:
        if self.op == "rename":
            return f"rename '{self.was[0] if self.was else '?'}' to '{self.label}'"
        return f"merge {', '.join(repr(w) for w in self.was)} into '{self.label}'"


@dataclass(frozen=True)
class EditOutcome:
    """What became of one edit when the log was applied to a result."""

    edit: Edit
    applied: bool
    message: str
    approximate: bool = False  # applied to a cluster with nearly, not exactly, the edit's texts
    overlap: float = 1.0  # Jaccard overlap of the match (the best one found, for a stale edit)


@dataclass(frozen=True)
class Edited:
    """Cluster id per distinct text and names after the edits, and what became of each edit."""

    labels: np.ndarray
    names: dict[int, str]
    outcomes: list[EditOutcome] = field(default_factory=list)

    @property
    def stale(self) -> list[EditOutcome]:
        return [o for o in self.outcomes if not o.applied]


def _members(labels: np.ndarray) -> dict[int, frozenset[int]]:
    return {int(c): frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels) if c >= 0}


def corpus_of(result: Result) -> str:
    """The key of the distinct texts an edit's member indices refer to."""
    return result.keys.get("corpus", "")


def rename(
    result_labels: np.ndarray, names: dict[int, str], cluster_id: int, label: str, corpus: str = ""
) -> Edit:
    if cluster_id < 0:
        raise InputError(
            "the unclustered group cannot be renamed", hint="merge or rename real clusters", stage="edit"
        )
    group = tuple(sorted(_members(result_labels)[cluster_id]))
    return Edit("rename", (group,), clean_name(label), (names.get(cluster_id, str(cluster_id)),), corpus)


def merge(
    result_labels: np.ndarray, names: dict[int, str], cluster_ids: list[int], label: str, corpus: str = ""
) -> Edit:
    ids = sorted(set(int(c) for c in cluster_ids))
    if len(ids) < 2 or min(ids) < 0:
        raise InputError(
            "pick two or more clusters to merge", hint="select clusters in the list", stage="edit"
        )
    members = _members(result_labels)
    return Edit(
        "merge",
        tuple(tuple(sorted(members[c])) for c in ids),
        clean_name(label),
        tuple(names.get(c, str(c)) for c in ids),
        corpus,
    )


def _overlaps(group: tuple[int, ...], labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Jaccard overlap of ``group``'s distinct texts with each cluster (index = cluster id)."""
    members = np.asarray(group, dtype=np.int64)
    members = members[(members >= 0) & (members < len(labels))]  # indices of another corpus
    ids = labels[members]
    inside = np.bincount(ids[ids >= 0], minlength=len(sizes))
    return inside / np.maximum(len(group) + sizes - inside, 1)


def _best(
    group: tuple[int, ...], labels: np.ndarray, sizes: np.ndarray, taken: set[int]
) -> tuple[int, float]:
    """The cluster (not in ``taken``) sharing most of ``group``'s texts and its overlap; (-1, 0.0)
    when there is none."""
    scores = _overlaps(group, labels, sizes)
    scores[list(taken)] = -1.0
    if not len(scores) or scores.max() <= 0:
        return -1, 0.0
    cid = int(np.argmax(scores))
    return cid, float(scores[cid])


def _percent(overlap: float) -> str:
    # rounded down (less float noise): a match just under MATCH never reads as enough, a near one
    # never as 100%
    return f"{int(overlap * 100 + 1e-9)}% of texts in common"


def _match(edit: Edit, labels: np.ndarray) -> tuple[list[int], float, bool]:
    """(the clusters the edit applies to, the weakest overlap, whether the merge's texts are one
    cluster already); no clusters when nothing matches (the overlap is then the best found).

    Each group is matched to its own cluster; a merge whose groups cannot be (k-means put them
    into one) is matched as the union of its groups."""
    sizes = np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, dtype=np.int64)
    matched, weakest = [], 1.0
    for group in edit.groups:
        cid, score = _best(group, labels, sizes, {c for c in matched if c >= 0})
        weakest = min(weakest, score)
        matched.append(cid)
    if weakest >= MATCH:
        return matched, weakest, False
    if edit.op == "merge":
        union = tuple(sorted(set().union(*edit.groups)))
        cid, score = _best(union, labels, sizes, set())
        if score >= MATCH:
            return [cid], score, True
        weakest = max(weakest, score)
    return [], weakest, False


def apply_edits(labels: np.ndarray, names: dict[int, str], edits: list[Edit], corpus: str = "") -> Edited:
    """Apply edits in order to cluster ids per distinct text; stale edits are reported, not fatal.

    An edit applies to the clusters with exactly its texts, else to those sharing at least ``MATCH``
    of them; a merge whose texts are one cluster now names that one. The outcome's message says
    which: "applied: <edit>", "applied (matched approximately: 92% of texts in common): <edit>",
    "applied (the merged texts are already one cluster[, matched approximately: ...]): <edit>", or
    "no longer applies: <edit> (no cluster with those texts now: at best 64% of texts in common)".

    ``corpus`` is the key of the texts ``labels`` is about: an edit made on other texts (another
    text column or preparation) does not apply, whatever its member indices happen to match."""
    labels = labels.copy()
    names = dict(names)
    outcomes = []
    for edit in edits:
        if edit.corpus and corpus and edit.corpus != corpus:
            outcomes.append(
                EditOutcome(
                    edit,
                    False,
                    f"no longer applies: {edit.describe()} (made on other texts: another text column "
                    "or text preparation)",
                    overlap=0.0,
                )
            )
            continue
        matched, overlap, joined = _match(edit, labels)
        if not matched:
            outcomes.append(
                EditOutcome(
                    edit,
                    False,
                    f"no longer applies: {edit.describe()} (no cluster with those texts now: "
                    f"at best {_percent(overlap)})",
                    overlap=overlap,
                )
            )
            continue
        target = min(matched)
        for cid in matched:
            labels[labels == cid] = target
            if cid != target:
                names.pop(cid, None)
        names[target] = edit.label
        approximate = overlap < 1.0
        how = ["the merged texts are already one cluster"] if joined else []
        how += [f"matched approximately: {_percent(overlap)}"] if approximate else []
        said = f" ({', '.join(how)})" if how else ""
        outcomes.append(EditOutcome(edit, True, f"applied{said}: {edit.describe()}", approximate, overlap))
    names[-1] = NOISE_LABEL
    return Edited(labels, names, outcomes)


def edited_from_result(result: Result, edits: list[Edit]) -> Edited:
    return apply_edits(result.clustering.labels, result.labels.label_of(), edits, corpus_of(result))


def edited_table(result: Result, edited: Edited) -> pd.DataFrame:
    """``result.table()`` with cluster ids and labels after the edits (raw ids unchanged)."""
    table = result.table()
    index = result.corpus.row_to_unique
    has_text = index >= 0
    safe = np.where(has_text, index, 0)
    ids = edited.labels[safe]
    table["cluster_id"] = pd.arrays.IntegerArray(ids.astype(np.int64), ~has_text)
    table["cluster_label"] = pd.array(
        [edited.names.get(int(c)) if ok else None for c, ok in zip(ids, has_text, strict=True)],
        dtype="string",
    )
    return table


def edited_clusters(
    result: Result, edited: Edited, cache_dir: str | Path | Cache | None = None
) -> pd.DataFrame:
    """The cluster summary after the edits. A merged cluster adds up its clusters' rows and gets
    keywords and representative texts as the label stage would give a run that found it: keywords
    scored on all its texts against the other clusters, examples the texts nearest their centre.
    Every other cluster keeps the run's own.

    ``cache_dir`` is the run's cache, where the label stage keeps the word counts per text; without
    it they are counted again, once per process and corpus, the first time a merge is shown."""
    base = result.clusters().set_index("id")
    counts = result.corpus.counts
    total = max(int(counts.sum()), 1)
    raw, first = np.unique(result.clustering.labels, return_index=True)
    sources: dict[int, list[int]] = {}  # edits move whole clusters: a cluster's first text says where
    for source, cid in zip(raw.tolist(), edited.labels[first].tolist(), strict=True):
        sources.setdefault(cid, []).append(source)
    merged = {cid for cid, from_ in sources.items() if len(from_) > 1}
    summaries = _merged_summaries(result, edited, merged, cache_dir) if merged else {}
    sizes = pd.Series(counts).groupby(edited.labels).sum()
    rows = []
    for cid in sorted(sources, key=lambda c: (c == -1, c)):
        own = sources[cid][0]
        if cid in merged:
            keywords, examples = summaries[cid]
        else:
            keywords, examples = str(base.loc[own, "keywords"]), str(base.loc[own, "representative_texts"])
        size = int(sizes[cid])
        rows.append(
            {
                "id": cid,
                "label": edited.names.get(cid, str(cid)),
                "size": size,
                "share": round(size / total, 4),
                "keywords": keywords,
                "representative_texts": examples,
                "merged_from": ", ".join(map(str, sources[cid])) if cid in merged else "",
            }
        )
    return pd.DataFrame(rows)


def _merged_summaries(
    result: Result, edited: Edited, merged: set[int], cache_dir: str | Path | Cache | None
) -> dict[int, tuple[str, str]]:
    """(keywords, representative texts) of the ``merged`` clusters, from the label stage's own
    summary of the edited clustering; remembered by the result's labels key and the edits (which
    decide ``merged``)."""
    run = result.keys.get("labels")
    digest = hashlib.sha256(np.ascontiguousarray(edited.labels, dtype=np.int64).tobytes()).hexdigest()
    if run is not None and (run, digest) in _SUMMARIES:
        return _SUMMARIES[run, digest]
    clustering = dataclasses.replace(result.clustering, labels=edited.labels)
    ctx = detached("label", cache=_Remembered(cache_dir))
    frame, _ = label_stage.summarise(result.corpus, result.embeddings, clustering, result.config.label, ctx)
    out = {
        int(cid): (", ".join(keywords), " | ".join(examples))
        for cid, keywords, examples in zip(
            frame["id"], frame["keywords"], frame["representatives"], strict=True
        )
        if int(cid) in merged
    }
    if run is not None:
        _keep(_SUMMARIES, (run, digest), out, SUMMARIES_KEPT)
    return out


def _keep(memo: dict, key: Any, value: Any, kept: int) -> None:
    memo[key] = value
    while len(memo) > kept:
        memo.pop(next(iter(memo)))


class _Remembered(Cache):
    """The label stage's pieces kept in this process (``_PIECES``), read from the run's cache
    when one is given and it has them, else computed (and stored there)."""

    def __init__(self, backing: str | Path | Cache | None):
        super().__init__(None)
        self.backing = backing

    def get_or_compute(
        self,
        kind: str,
        key: str,
        compute: Callable[[], T],
        on_corrupt: Callable[[str], None] | None = None,
        keep: Callable[[T], bool] | None = None,
        mmap: bool = False,
    ) -> tuple[T, bool]:
        if (kind, key) in _PIECES:
            return _PIECES[kind, key], True
        backing = self.backing
        if backing is not None and not isinstance(backing, Cache):
            backing = Cache(backing)
        if backing is None:
            value, hit = compute(), False
        else:
            value, hit = backing.get_or_compute(kind, key, compute, on_corrupt, keep, mmap)
        _keep(_PIECES, (kind, key), value, PIECES_KEPT)
        return value, hit


# --- the cluster tree as edits -------------------------------------------------------------------


def current_ids(result: Result, edited: Edited) -> dict[int, int]:
    """Each cluster of the result -> the cluster it is part of after the edits (edits move whole
    clusters, so every member of a result cluster has the same edited id)."""
    ids, first = np.unique(result.clustering.labels, return_index=True)
    return {int(c): int(edited.labels[i]) for c, i in zip(ids, first, strict=True) if c >= 0}


def cluster_rows(result: Result, edited: Edited) -> dict[int, int]:
    """Rows per cluster after the edits."""
    sizes = pd.Series(result.corpus.counts).groupby(edited.labels).sum()
    return {int(c): int(n) for c, n in sizes.items()}


def tree_level(result: Result, edited: Edited, n_groups: int) -> list[list[int]]:
    """The edited clusters grouped as the cluster tree groups them once ``n_groups`` remain: one
    list of edited cluster ids per group, largest group first.

    The tree is over the result's clusters; an earlier merge that joined clusters of two
    groups joins those groups too (a cluster cannot sit in two groups)."""
    now = current_ids(result, edited)
    groups: dict[int, set[int]] = {}
    for cid, group in result.tree.cut(n_groups).items():
        groups.setdefault(group, set()).add(now[cid])
    # union groups that share an edited cluster (order kept: the first group's number wins)
    joined: list[set[int]] = []
    for _, members in sorted(groups.items()):
        overlapping = [g for g in joined if g & members]
        for g in overlapping:
            members |= g
            joined.remove(g)
        joined.append(members)
    size = cluster_rows(result, edited)
    return [sorted(g) for g in sorted(joined, key=lambda g: (-sum(size[c] for c in g), min(g)))]


def group_name(ids: list[int], edited: Edited, size: dict[int, int]) -> str:
    """A merged group's name: the first words of its two largest clusters' names."""
    top = sorted(ids, key=lambda c: (-size[c], c))[:2]
    name = " + ".join(str(edited.names.get(c, c)).split(",")[0].strip() for c in top)
    return name + (" + …" if len(ids) > 2 else "")


def tree_merges(result: Result, edited: Edited, groups: list[list[int]]) -> list[Edit]:
    """One merge per group with two or more clusters. The groups are disjoint, so each merge's
    clusters are untouched by the ones before it and every edit applies in order."""
    corpus, size = corpus_of(result), cluster_rows(result, edited)
    return [
        merge(edited.labels, edited.names, ids, group_name(ids, edited, size), corpus)
        for ids in groups
        if len(ids) > 1
    ]


def clusters_with_parents(result: Result, edited: Edited, clusters: pd.DataFrame) -> pd.DataFrame:
    """The edited cluster summary with ``parent_id``: the tree node above each cluster. A merged
    cluster that is exactly a node of the tree gets that node's parent; one that is not gets the
    smallest node holding all its clusters. Empty for the unclustered."""
    tree = result.tree
    parent_of = tree.parent_of()
    covers = [(int(n.id), int(n.parent_id), set(n.clusters)) for n in tree.nodes.itertuples()]
    now = current_ids(result, edited)
    parents: list[int | None] = []
    for cid in clusters["id"]:
        sources = {c for c, e in now.items() if e == int(cid)}
        if len(sources) <= 1:
            parent = parent_of.get(min(sources), -1) if sources else -1
        else:
            node, up, held = min((n for n in covers if sources <= n[2]), key=lambda n: len(n[2]))
            parent = up if held == sources else node
        parents.append(parent if parent >= 0 else None)
    return clusters.assign(parent_id=pd.array(parents, dtype="Int64"))
