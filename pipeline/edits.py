"""The analyst's edits (rename, merge) as a log applied on top of a pipeline result.

Edits name clusters by their members (distinct-text indices), never by id, so after a
re-run with other settings an edit still applies to the cluster that has (mostly) the same
members, and says plainly when no cluster matches any more. Indices only mean the same
texts within one corpus (text column and preparation), so an edit remembers its corpus key
and never applies to another corpus's clusters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .result import Result
from .types import NOISE_LABEL

MATCH = 0.5  # Jaccard overlap needed to call a cluster "the same" after a re-run
MAX_LABEL = 80


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


def _best_match(group: frozenset[int], members: dict[int, frozenset[int]], taken: set[int]) -> int | None:
    best, best_score = None, 0.0
    for cid, current in members.items():
        if cid in taken:
            continue
        score = len(group & current) / len(group | current)
        if score > best_score:
            best, best_score = cid, score
    return best if best_score >= MATCH else None


def apply_edits(labels: np.ndarray, names: dict[int, str], edits: list[Edit], corpus: str = "") -> Edited:
    """Apply edits in order to cluster ids per distinct text; stale edits are reported, not fatal.

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
                )
            )
            continue
        members = _members(labels)
        taken: set[int] = set()
        matched = []
        for group in edit.groups:
            cid = _best_match(frozenset(group), members, taken)
            if cid is None:
                break
            taken.add(cid)
            matched.append(cid)
        if len(matched) < len(edit.groups):
            outcomes.append(
                EditOutcome(
                    edit, False, f"no longer applies: {edit.describe()} (no cluster with those texts now)"
                )
            )
            continue
        if edit.op == "merge":
            target = min(matched)
            for cid in matched:
                labels[labels == cid] = target
                if cid != target:
                    names.pop(cid, None)
            names[target] = edit.label
        else:
            names[matched[0]] = edit.label
        outcomes.append(EditOutcome(edit, True, f"applied: {edit.describe()}"))
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


def edited_clusters(result: Result, edited: Edited) -> pd.DataFrame:
    """The cluster summary after the edits: merged clusters add up sizes and keywords."""
    base = result.clusters().set_index("id")
    counts = result.corpus.counts
    total = max(int(counts.sum()), 1)
    rows = []
    for cid in sorted(set(edited.labels.tolist()), key=lambda c: (c == -1, c)):
        members = edited.labels == cid
        sources = sorted(set(result.clustering.labels[members].tolist()))
        keywords: list[str] = []
        for source in sources:
            for word in str(base.loc[source, "keywords"]).split(", "):
                if word and word not in keywords:
                    keywords.append(word)
        size = int(counts[members].sum())
        rows.append(
            {
                "id": cid,
                "label": edited.names.get(cid, str(cid)),
                "size": size,
                "share": round(size / total, 4),
                "keywords": ", ".join(keywords[: max(8, len(sources) * 3)]),
                "representative_texts": " | ".join(
                    str(base.loc[s, "representative_texts"]) for s in sources[:3]
                ),
                "merged_from": ", ".join(str(s) for s in sources) if len(sources) > 1 else "",
            }
        )
    return pd.DataFrame(rows)


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
