"""The analyst's edits as a log applied on top of a pipeline result: rename and merge clusters,
move texts to another cluster (a new one, or the unclustered), tag texts, split a cluster.

Edits name clusters and texts by their members (distinct-text indices), never by cluster id, so
after a re-run with other settings an edit still applies to the cluster that has the same members,
or nearly the same (``MATCH``: says so), and says plainly when no cluster matches any more.
Indices only mean the same texts within one corpus (text column and preparation), so an edit
remembers its corpus key and never applies to another corpus's clusters.

Clusters belong to distinct texts, so a move or a tag applies to a text: every row with the same
text goes with it (``Edit.rows`` keeps how many rows that was, for the log's wording).

How each kind re-applies after a re-run (``apply_edits``):

* rename, merge: to the clusters sharing at least ``MATCH`` of their texts (as before).
* move to a cluster: the texts it names go to the cluster that now holds the target's texts
  (``MATCH``, the moved texts left out of the comparison, so a re-run that already put them there
  still matches); when no cluster does, the move is stale and moves nothing (never a part).
* move to a new cluster, or to the unclustered: always applies (a new cluster is created).
* tag, untag: always apply, to the texts that are still in the data.
* split: applies when the cluster is matched (``MATCH``); each stored piece takes its texts that
  are in that cluster now. Texts of the cluster in no stored piece (new to it since the split)
  stay in the first piece, which keeps the cluster's id: no coordinates are needed to re-apply,
  and the message says how many there were. A split left with fewer than two pieces is stale.

New clusters (a move to a new cluster, a split's pieces after the first) get ids above every id
of the result and of the edits before them, in log order: the same log gives the same ids.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from .cache import Cache, array_digest
from .clustering import clusterer
from .clustering.assign import assign_by_neighbours
from .clustering.base import Points
from .config import ClusterParams
from .context import detached
from .errors import ConfigError, InputError, StageError
from .result import Result, names_per_row
from .stages import label as label_stage
from .types import NOISE_LABEL

T = TypeVar("T")

# Jaccard overlap of distinct texts (each text once, however many rows carry it) that makes a
# cluster "the same" after a re-run: a small slider change that moves a few texts keeps the
# edit (said to match approximately), a cluster that kept only part of its texts does not
MATCH = 0.8
MAX_LABEL = 80
MAX_TAG = 60
TAGS_SEPARATOR = ";"  # the export's ``tags`` column separates a row's tags with it: a tag cannot hold it
TAGS_JOINER = TAGS_SEPARATOR + " "  # "urgent; refund, late" (the decision)
UNCLUSTERED = -1  # ``move(..., to=UNCLUSTERED)``
# Changed clusters' keywords, examples and labels by result and edited labels, and the word
# counts per text they are scored on (the label stage's piece), by their keys: the Explore page
# asks on every rerun, and counting the words of 100,000 texts again takes seconds
SUMMARIES_KEPT = 8
PIECES_KEPT = 2
_SUMMARIES: dict[tuple[str, str], dict[int, tuple[str, str, str]]] = {}
_PIECES: dict[tuple[str, str], Any] = {}


def clean_name(text: str) -> str:
    """A name the analyst typed for a cluster: one line, at most MAX_LABEL characters, not empty."""
    label = _one_line(text)
    if not label:
        raise InputError("a cluster name cannot be empty", hint="type a name", stage="edit")
    return label[:MAX_LABEL]


def clean_tag(text: str) -> str:
    """A tag the analyst typed: one line, at most MAX_TAG characters, not empty, without ``;``
    (the export joins a row's tags with it). Commas are kept (CSV quotes them) and a tag that
    starts like a formula is kept as typed: the CSV and Excel exports neutralise it."""
    tag = _one_line(text)
    if not tag:
        raise InputError("a tag cannot be empty", hint="type a tag", stage="edit")
    if TAGS_SEPARATOR in tag:
        raise InputError(
            f"a tag cannot contain '{TAGS_SEPARATOR}': the export's tags column separates tags with it",
            hint="use another character, such as '/' or '-', or add two tags",
            stage="edit",
        )
    return tag[:MAX_TAG].strip()


def _one_line(text: str) -> str:
    label = re.sub(r"[\x00-\x1f\x7f]+", " ", str(text)).strip()
    return re.sub(r"\s+", " ", label)


@dataclass(frozen=True)
class Edit:
    """One edit of the log. Fields by ``op``:

    * rename: ``groups`` = (the cluster's members,), ``label`` = the new name, ``was`` = (old name,)
    * merge: ``groups`` = members of each cluster, ``label`` = the new name, ``was`` = their names
    * move: ``texts`` moved; ``target`` "cluster" (``groups`` = (the target's members,), ``label`` =
      its name), "new" (``label`` = the new cluster's name) or "unclustered"; ``was`` = the names of
      the clusters the texts came from
    * tag / untag: ``texts``, ``label`` = the tag
    * split: ``groups`` = (the cluster's members,), ``was`` = (its name,), ``pieces`` = the members
      of each piece (the first keeps the cluster's id), ``names`` = each piece's keyword label

    ``rows`` (move, tag, untag): how many rows the texts were when the edit was made."""

    op: str
    groups: tuple[tuple[int, ...], ...]
    label: str
    was: tuple[str, ...] = ()  # the clusters' labels when the edit was made
    corpus: str = ""  # the corpus key the indices index into; "" = unknown (older edit logs)
    texts: tuple[int, ...] = ()
    target: str = ""
    pieces: tuple[tuple[int, ...], ...] = ()
    names: tuple[str, ...] = ()
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``state.json``; a rename or merge writes the keys it always wrote."""
        out: dict[str, Any] = {
            "op": self.op,
            "groups": [list(g) for g in self.groups],
            "label": self.label,
            "was": list(self.was),
            "corpus": self.corpus,
        }
        extra = {
            "texts": list(self.texts),
            "target": self.target,
            "pieces": [list(p) for p in self.pieces],
            "names": list(self.names),
            "rows": self.rows,
        }
        return out | {key: value for key, value in extra.items() if value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edit:
        return cls(  # map(int, ...): the edit log is read on every rerun, thousands of members each
            op=str(data["op"]),
            groups=tuple(tuple(map(int, g)) for g in data["groups"]),
            label=str(data["label"]),
            was=tuple(str(w) for w in data.get("was", ())),
            corpus=str(data.get("corpus") or ""),
            texts=tuple(map(int, data.get("texts") or ())),
            target=str(data.get("target") or ""),
            pieces=tuple(tuple(map(int, p)) for p in data.get("pieces") or ()),
            names=tuple(str(n) for n in data.get("names") or ()),
            rows=int(data.get("rows") or 0),
        )

    def describe(self) -> str:
        """The edit in the log's words: "move 12 texts (15 rows) to 'card declined'"."""
        if self.op == "rename":
            return f"rename '{self.was[0] if self.was else '?'}' to '{self.label}'"
        if self.op == "merge":
            return f"merge {', '.join(repr(w) for w in self.was)} into '{self.label}'"
        if self.op == "move":
            where = {"new": f"a new cluster '{self.label}'", "unclustered": f"'{NOISE_LABEL}'"}
            return f"move {self._amount()} to " + where.get(self.target, f"'{self.label}'")
        if self.op == "tag":
            return f"tag {self._amount()} '{self.label}'"
        if self.op == "untag":
            return f"remove the tag '{self.label}' from {self._amount()}"
        if self.op == "split":
            return f"split '{self.was[0] if self.was else self.label}' into {len(self.pieces)}"
        return f"{self.op} '{self.label}'"

    def _amount(self) -> str:
        texts = _plural(len(self.texts), "text")
        return f"{texts} ({_plural(self.rows, 'row')})" if self.rows else texts


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


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
    """Cluster id per distinct text and names after the edits, each distinct text's tags (texts
    without tags are absent), and what became of each edit."""

    labels: np.ndarray
    names: dict[int, str]
    outcomes: list[EditOutcome] = field(default_factory=list)
    tags: dict[int, tuple[str, ...]] = field(default_factory=dict)
    next_id: int = 0  # the id the next new cluster gets (0: above every id in ``labels``/``names``)

    @property
    def stale(self) -> list[EditOutcome]:
        return [o for o in self.outcomes if not o.applied]

    def tag_names(self) -> list[str]:
        """Every tag in use, sorted: what the app offers to filter or untag by."""
        return sorted({tag for tags in self.tags.values() for tag in tags})

    def tagged(self, tag: str) -> np.ndarray:
        """The distinct texts that carry ``tag``."""
        return np.array(sorted(i for i, tags in self.tags.items() if tag in tags), dtype=np.int64)


def _cluster(labels: np.ndarray, cluster_id: int, doing: str) -> np.ndarray:
    """The members of cluster ``cluster_id``; an InputError when it has none (gone after an edit)."""
    members = np.flatnonzero(labels == cluster_id)
    if cluster_id < 0 or not len(members):
        raise InputError(
            f"there is no cluster {cluster_id} to {doing} now: an edit may have merged or emptied it",
            hint="pick a cluster from the current list",
            stage="edit",
        )
    return members


def corpus_of(result: Result) -> str:
    """The key of the distinct texts an edit's member indices refer to."""
    return result.keys.get("corpus", "")


def texts_of_rows(result: Result, rows: Iterable[int]) -> np.ndarray:
    """The distinct texts of table rows (positions in ``result.table()``), sorted; rows without
    a text are left out. A move or a tag of these texts applies to every row that carries them:
    ``rows_of`` says how many."""
    index = result.corpus.row_to_unique[np.asarray(list(rows), dtype=np.int64)]
    return np.unique(index[index >= 0])


def rows_of(counts: np.ndarray, texts: Iterable[int]) -> int:
    """How many rows carry these distinct texts (``counts`` = ``result.corpus.counts``)."""
    return int(np.asarray(counts)[np.asarray(list(texts), dtype=np.int64)].sum())


def rename(
    result_labels: np.ndarray, names: dict[int, str], cluster_id: int, label: str, corpus: str = ""
) -> Edit:
    if cluster_id < 0:
        raise InputError(
            "the unclustered group cannot be renamed", hint="merge or rename real clusters", stage="edit"
        )
    group = tuple(_cluster(result_labels, cluster_id, "rename").tolist())
    return Edit("rename", (group,), clean_name(label), (names.get(cluster_id, str(cluster_id)),), corpus)


def merge(
    result_labels: np.ndarray, names: dict[int, str], cluster_ids: list[int], label: str, corpus: str = ""
) -> Edit:
    ids = sorted(set(int(c) for c in cluster_ids))
    if len(ids) < 2 or min(ids) < 0:
        raise InputError(
            "pick two or more clusters to merge", hint="select clusters in the list", stage="edit"
        )
    return Edit(
        "merge",
        tuple(tuple(_cluster(result_labels, c, "merge").tolist()) for c in ids),
        clean_name(label),
        tuple(names.get(c, str(c)) for c in ids),
        corpus,
    )


def _selected(texts: Iterable[int], n_texts: int, doing: str) -> tuple[int, ...]:
    """The distinct texts of a selection, sorted, each once; an InputError for none or for an
    index that is no text of these data."""
    chosen = sorted({int(i) for i in texts})
    if not chosen:
        raise InputError(
            f"no texts to {doing}: the selection is empty",
            hint="select rows on the map, in a search or in the table first",
            stage="edit",
        )
    if chosen[0] < 0 or chosen[-1] >= n_texts:
        bad = chosen[0] if chosen[0] < 0 else chosen[-1]
        raise InputError(
            f"text {bad} is not one of the {n_texts:,} distinct texts of these data",
            hint="select the texts again (rows without text cannot be moved or tagged)",
            stage="edit",
        )
    return tuple(chosen)


def move(
    result_labels: np.ndarray,
    names: dict[int, str],
    texts: Iterable[int],
    to: int | str,
    corpus: str = "",
    counts: np.ndarray | None = None,
) -> Edit:
    """Move distinct ``texts`` (every row with the same text goes with them) to the cluster ``to``
    (an id), to ``UNCLUSTERED`` (-1), or to a new cluster named ``to`` (a string). ``counts`` (rows
    per distinct text) lets the log say how many rows that is."""
    labels = np.asarray(result_labels)
    chosen = _selected(texts, len(labels), "move")
    rows = rows_of(counts, chosen) if counts is not None else 0
    was = tuple(names.get(int(c), str(c)) for c in sorted(set(labels[list(chosen)].tolist())))
    if isinstance(to, str):
        return Edit("move", (), clean_name(to), was, corpus, chosen, "new", rows=rows)
    to = int(to)
    if to == UNCLUSTERED:
        target, groups, label = "unclustered", (), NOISE_LABEL
    else:
        target, label = "cluster", names.get(to, str(to))
        groups = (tuple(_cluster(labels, to, "move texts to").tolist()),)
    if (labels[list(chosen)] == to).all():
        raise InputError(
            f"the selected texts are all in '{label}' already",
            hint="pick another cluster to move them to",
            stage="edit",
        )
    return Edit("move", groups, label, was, corpus, chosen, target, rows=rows)


def tag(texts: Iterable[int], label: str, corpus: str = "", counts: np.ndarray | None = None) -> Edit:
    """Tag distinct ``texts`` (every row with the same text) with ``label`` (see ``clean_tag``)."""
    return _tagging("tag", texts, label, corpus, counts)


def untag(texts: Iterable[int], label: str, corpus: str = "", counts: np.ndarray | None = None) -> Edit:
    """Take the tag ``label`` off distinct ``texts``."""
    return _tagging("untag", texts, label, corpus, counts)


def _tagging(op: str, texts: Iterable[int], label: str, corpus: str, counts: np.ndarray | None) -> Edit:
    tag_ = clean_tag(label)
    n_texts = len(counts) if counts is not None else np.iinfo(np.int64).max
    chosen = _selected(texts, n_texts, op)
    rows = rows_of(counts, chosen) if counts is not None else 0
    return Edit(op, (), tag_, (), corpus, chosen, rows=rows)


# --- split -----------------------------------------------------------------------------------------


def split_cluster(
    result: Result,
    edited: Edited,
    cluster_id: int,
    *,
    n: int | None = None,
    min_cluster_size: int | None = None,
) -> list[np.ndarray]:
    """Re-cluster one cluster's members on their own, on their reduced coordinates
    (``result.projection.coords``): the pieces' member indices, largest (rows) first.

    * ``n``: into exactly ``n`` pieces, by k-means (whatever algorithm the run used: "into N" is
      exact, and k-means needs nothing else).
    * ``min_cluster_size``: HDBSCAN with that minimum size and the automatic level.
    * neither: the run's own algorithm with automatic settings for this many texts (finer than
      the run's, which were chosen for the whole corpus); an algorithm that needs a number of
      clusters asks for ``n``.

    Texts the re-clustering leaves unclustered join the piece of their nearest neighbours, so a
    split never sends texts to the unclustered. An InputError when the cluster does not split
    (one piece found), or for impossible requests (the unclustered group, fewer than two pieces,
    more pieces than texts)."""
    if cluster_id < 0:
        raise InputError(
            "the unclustered group cannot be split",
            hint="split a cluster, or move texts out of it",
            stage="edit",
        )
    members = _cluster(edited.labels, cluster_id, "split")
    name = edited.names.get(cluster_id, str(cluster_id))
    params = _split_params(result, name, len(members), n, min_cluster_size)
    coords = np.asarray(result.projection.coords, dtype=np.float64)[members]
    projection = dataclasses.replace(
        result.projection, coords=coords, layout=result.projection.layout[members], fitted_on=0
    )
    vectors = np.asarray(result.embeddings.vectors[members])
    points = Points(coords, result.corpus.counts[members], vectors)
    try:
        fit = clusterer(params.algorithm).setup(params, projection, len(members), None).fit(points)
    except (StageError, ConfigError) as exc:
        raise InputError(
            f"'{name}' cannot be split this way: {exc.message}",
            hint="split it into a number of pieces, or use a smaller min cluster size",
            stage="edit",
        ) from exc
    labels = fit.labels
    if (labels >= 0).any():
        labels = assign_by_neighbours(coords, labels)
    pieces = [members[labels == p] for p in np.unique(labels[labels >= 0])]
    if len(pieces) < 2:
        setting = f"into {n}" if n else f"with min cluster size {params.min_cluster_size or 'automatic'}"
        raise InputError(
            f"'{name}' did not split {setting}: its {len(members):,} texts stay one group",
            hint="split it into a number of pieces (k-means always splits), or use a smaller min cluster size",
            stage="edit",
        )
    return _ordered(pieces, result.corpus.counts)


def _split_params(
    result: Result, name: str, size: int, n: int | None, min_cluster_size: int | None
) -> ClusterParams:
    """The ClusterParams a split re-clusters with (see ``split_cluster``)."""
    run = result.config.cluster
    if size < 2:
        raise InputError(f"'{name}' has one distinct text: it cannot be split", stage="edit")
    if n is not None and min_cluster_size is not None:
        raise InputError("split into a number of pieces or with a min cluster size, not both", stage="edit")
    if n is not None:
        if not 2 <= n <= size:
            raise InputError(
                f"'{name}' cannot be split into {n}: it has {size:,} distinct texts",
                hint=f"split it into 2 to {size:,} pieces",
                stage="edit",
            )
        return dataclasses.replace(run, algorithm="kmeans", n_clusters=int(n), fit_sample=0)
    if min_cluster_size is not None and min_cluster_size < 2:
        raise InputError(
            f"a min cluster size of {min_cluster_size} cannot split anything",
            hint="use 2 or more",
            stage="edit",
        )
    algorithm = "hdbscan" if min_cluster_size is not None else run.algorithm
    if clusterer(algorithm).needs_k:
        raise InputError(
            f"{clusterer(algorithm).title} needs to be told into how many pieces to split '{name}'",
            hint="split it into a number of pieces",
            stage="edit",
        )
    return dataclasses.replace(
        run,
        algorithm=algorithm,
        min_cluster_size=int(min_cluster_size or 0),
        min_samples=0,
        epsilon=-1.0,
        n_clusters=0,
        assign_outliers=False,
        fit_sample=0,
    )


def _ordered(pieces: list[np.ndarray], counts: np.ndarray) -> list[np.ndarray]:
    """Pieces by rows, largest first (ties: the one with the first text first)."""
    kept = [np.unique(np.asarray(p, dtype=np.int64)) for p in pieces]
    kept = [p for p in kept if len(p)]
    return sorted(kept, key=lambda p: (-int(counts[p].sum()), int(p[0])))


def split(
    result: Result,
    edited: Edited,
    cluster_id: int,
    pieces: list[np.ndarray],
    cache_dir: str | Path | Cache | None = None,
) -> Edit:
    """The edit that splits ``cluster_id`` into ``pieces`` (member indices, e.g. from
    ``split_cluster``), each named by the keyword label the label stage gives it (scored against
    every other cluster). Members in no piece join the first (largest) piece."""
    if cluster_id < 0:
        raise InputError(
            "the unclustered group cannot be split",
            hint="split a cluster, or move texts out of it",
            stage="edit",
        )
    members = _cluster(edited.labels, cluster_id, "split")
    counts = result.corpus.counts
    cleaned = _ordered([np.intersect1d(p, members) for p in pieces], counts)
    joined = np.concatenate(cleaned) if cleaned else np.zeros(0, dtype=np.int64)
    if len(np.unique(joined)) < len(joined):
        raise InputError("a text cannot be in two pieces of a split", stage="edit")
    if len(cleaned) < 2:
        raise InputError(
            "a split needs two or more pieces with texts of the cluster",
            hint="split it into 2 or more pieces",
            stage="edit",
        )
    cleaned[0] = np.union1d(cleaned[0], np.setdiff1d(members, joined))
    labels = edited.labels.copy()
    # the ids apply_edits will give the pieces when the split ends the log: the same clustering,
    # so showing it after the split scores nothing again
    new = max(edited.next_id, _next_id(edited.labels, edited.names))
    ids = [cluster_id, *range(new, new + len(cleaned) - 1)]
    for cid, piece in zip(ids[1:], cleaned[1:], strict=True):
        labels[piece] = cid
    summaries = _summaries(result, labels, cache_dir)
    name = edited.names.get(cluster_id, str(cluster_id))
    return Edit(
        "split",
        (tuple(members.tolist()),),
        name,
        (name,),
        corpus_of(result),
        pieces=tuple(tuple(p.tolist()) for p in cleaned),
        names=tuple(summaries[cid][0] for cid in ids),
    )


def _next_id(labels: np.ndarray, names: dict[int, str]) -> int:
    """An id above every cluster id in use or named."""
    return max(int(labels.max(initial=-1)), max((int(c) for c in names), default=-1)) + 1


# --- applying the log ------------------------------------------------------------------------------


def _overlaps(group: tuple[int, ...], labels: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Jaccard overlap of ``group``'s distinct texts with each cluster (index = cluster id)."""
    members = np.asarray(group, dtype=np.int64)
    members = members[(members >= 0) & (members < len(labels))]  # indices of another corpus
    ids = labels[members]
    inside = np.bincount(ids[ids >= 0], minlength=len(sizes))
    return inside / np.maximum(len(group) + sizes - inside, 1)


def _sizes(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels[labels >= 0]) if (labels >= 0).any() else np.zeros(0, dtype=np.int64)


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
    return f"{_share(overlap)}% of texts in common"


def _share(overlap: float) -> int:
    # rounded down (less float noise): a match just under MATCH never reads as enough, a near one
    # never as 100%
    return int(overlap * 100 + 1e-9)


def _match(edit: Edit, labels: np.ndarray) -> tuple[list[int], float, bool]:
    """(the clusters the edit applies to, the weakest overlap, whether the merge's texts are one
    cluster already); no clusters when nothing matches (the overlap is then the best found).

    Each group is matched to its own cluster; a merge whose groups cannot be (k-means put them
    into one) is matched as the union of its groups."""
    sizes = _sizes(labels)
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


class _Log:
    """The state ``apply_edits`` changes edit by edit: ids, names, tags, the next new id."""

    def __init__(self, labels: np.ndarray, names: dict[int, str]):
        self.labels = np.asarray(labels, dtype=np.int64).copy()
        self.names = dict(names)
        self.tags: dict[int, tuple[str, ...]] = {}
        self.next_id = _next_id(self.labels, self.names)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def present(self, texts: tuple[int, ...]) -> np.ndarray:
        """The edit's texts that are texts of these data (all of them, unless the log's corpus
        was unknown)."""
        chosen = np.asarray(texts, dtype=np.int64)
        return chosen[(chosen >= 0) & (chosen < len(self.labels))]


def _applied(edit: Edit, how: list[str], approximate: bool = False, overlap: float = 1.0) -> EditOutcome:
    said = f" ({', '.join(how)})" if how else ""
    return EditOutcome(edit, True, f"applied{said}: {edit.describe()}", approximate, overlap)


def _stale(edit: Edit, why: str, overlap: float = 0.0) -> EditOutcome:
    return EditOutcome(edit, False, f"no longer applies: {edit.describe()} ({why})", overlap=overlap)


def _missing(edit: Edit, texts: np.ndarray) -> list[str]:
    gone = len(edit.texts) - len(texts)
    return [f"{_plural(gone, 'text')} of it not in the data now"] if gone else []


def _approximately(overlap: float) -> list[str]:
    return [f"matched approximately: {_percent(overlap)}"] if overlap < 1.0 else []


def _apply_rename_or_merge(log: _Log, edit: Edit) -> EditOutcome:
    matched, overlap, joined = _match(edit, log.labels)
    if not matched:
        return _stale(edit, f"no cluster with those texts now: at best {_percent(overlap)}", overlap)
    target = min(matched)
    for cid in matched:
        log.labels[log.labels == cid] = target
        if cid != target:
            log.names.pop(cid, None)
    log.names[target] = edit.label
    how = ["the merged texts are already one cluster"] if joined else []
    return _applied(edit, how + _approximately(overlap), overlap < 1.0, overlap)


def _apply_move(log: _Log, edit: Edit) -> EditOutcome:
    texts = log.present(edit.texts)
    if not len(texts):
        return _stale(edit, "none of its texts are in the data now")
    overlap = 1.0
    if edit.target == "new":
        target = log.new_id()
        log.names[target] = edit.label
    elif edit.target == "unclustered":
        target = -1
    else:
        target, overlap = _move_target(log.labels, edit.groups[0] if edit.groups else (), texts)
        if overlap < MATCH:
            return _stale(
                edit, f"that cluster is gone: at best {_share(overlap)}% of its texts in common", overlap
            )
    log.labels[texts] = target
    return _applied(edit, _missing(edit, texts) + _approximately(overlap), overlap < 1.0, overlap)


def _move_target(labels: np.ndarray, group: tuple[int, ...], moved: np.ndarray) -> tuple[int, float]:
    """The cluster that holds the move's target now and its overlap, compared without the moved
    texts (a re-run that put them there already must not make the target look different)."""
    rest = tuple(sorted(set(group) - set(moved.tolist())))
    if not rest:  # the target held only texts being moved: compare it as it was
        return _best(group, labels, _sizes(labels), set())
    others = labels.copy()
    others[moved] = -1
    return _best(rest, others, _sizes(others), set())


def _apply_tag(log: _Log, edit: Edit) -> EditOutcome:
    texts = log.present(edit.texts)
    if not len(texts):
        return _stale(edit, "none of its texts are in the data now")
    if edit.op == "tag":
        for i in texts.tolist():
            now = log.tags.get(i, ())
            if edit.label not in now:
                log.tags[i] = (*now, edit.label)
        return _applied(edit, _missing(edit, texts))
    carrying = [i for i in texts.tolist() if edit.label in log.tags.get(i, ())]
    if not carrying:
        return _stale(edit, "none of its texts carries that tag now")
    for i in carrying:
        kept = tuple(t for t in log.tags[i] if t != edit.label)
        if kept:
            log.tags[i] = kept
        else:
            del log.tags[i]
    return _applied(edit, _missing(edit, texts))


def _apply_split(log: _Log, edit: Edit) -> EditOutcome:
    matched, overlap, _ = _match(edit, log.labels)
    if not matched:
        return _stale(edit, f"no cluster with those texts now: at best {_percent(overlap)}", overlap)
    (cid,) = matched
    inside = log.labels == cid
    pieces = [np.asarray(p, dtype=np.int64) for p in edit.pieces]
    pieces = [p[(p >= 0) & (p < len(inside))] for p in pieces]  # indices of another corpus
    kept = [(i, p[inside[p]]) for i, p in enumerate(pieces)]
    kept = [(i, p) for i, p in kept if len(p)]
    if len(kept) < 2:
        return _stale(edit, "fewer than two of its pieces are in that cluster now", overlap)
    (first, _), *rest = kept
    stored = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    newcomers = int(inside.sum() - np.isin(np.flatnonzero(inside), stored).sum())
    for i, piece in rest:
        new = log.new_id()
        log.labels[piece] = new
        log.names[new] = _piece_name(edit, i)
    log.names[cid] = _piece_name(edit, first)
    how = _approximately(overlap)
    if newcomers:
        how.append(f"{_plural(newcomers, 'text')} new to it stay in '{log.names[cid]}'")
    return _applied(edit, how, overlap < 1.0, overlap)


def _piece_name(edit: Edit, i: int) -> str:
    return edit.names[i] if i < len(edit.names) else f"{edit.label} ({i + 1})"


_APPLY: dict[str, Callable[[_Log, Edit], EditOutcome]] = {
    "rename": _apply_rename_or_merge,
    "merge": _apply_rename_or_merge,
    "move": _apply_move,
    "tag": _apply_tag,
    "untag": _apply_tag,
    "split": _apply_split,
}


def apply_edits(labels: np.ndarray, names: dict[int, str], edits: list[Edit], corpus: str = "") -> Edited:
    """Apply edits in order to cluster ids per distinct text; stale edits are reported, not fatal.

    A rename or merge applies to the clusters with exactly its texts, else to those sharing at
    least ``MATCH`` of them; a merge whose texts are one cluster now names that one. The outcome's
    message says which: "applied: <edit>", "applied (matched approximately: 92% of texts in
    common): <edit>", "applied (the merged texts are already one cluster[, matched approximately:
    ...]): <edit>", or "no longer applies: <edit> (no cluster with those texts now: at best 64% of
    texts in common)". The other kinds (the module's docstring says how each re-applies) say
    "no longer applies: move 12 texts (15 rows) to 'card declined' (that cluster is gone: at best
    40% of its texts in common)", "applied (2 texts new to it stay in 'card, declined'): split
    'card issues' into 3", "no longer applies: remove the tag 'x' from 3 texts (none of its texts
    carries that tag now)".

    ``corpus`` is the key of the texts ``labels`` is about: an edit made on other texts (another
    text column or preparation) does not apply, whatever its member indices happen to match.
    Clusters an edit emptied (every text moved out) are gone, their names with them."""
    log = _Log(labels, names)
    outcomes = []
    for edit in edits:
        if edit.corpus and corpus and edit.corpus != corpus:
            why = "made on other texts: another text column or text preparation"
            outcomes.append(_stale(edit, why))
        elif edit.op not in _APPLY:
            outcomes.append(_stale(edit, "an edit this version of Clusterlab does not know"))
        else:
            outcomes.append(_APPLY[edit.op](log, edit))
    present = set(np.unique(log.labels).tolist())
    names_now = {c: n for c, n in log.names.items() if c in present}
    names_now[-1] = NOISE_LABEL
    return Edited(log.labels, names_now, outcomes, log.tags, log.next_id)


def edited_from_result(result: Result, edits: list[Edit]) -> Edited:
    return apply_edits(result.clustering.labels, result.labels.label_of(), edits, corpus_of(result))


def edited_table(result: Result, edited: Edited) -> pd.DataFrame:
    """``result.table()`` with cluster ids and labels after the edits (raw ids unchanged) and a
    ``tags`` column: each row's tags joined with ``; `` ("" when it has none)."""
    table = result.table()
    index = result.corpus.row_to_unique
    has_text = index >= 0
    safe = np.where(has_text, index, 0)
    ids = edited.labels[safe]
    table["cluster_id"] = pd.arrays.IntegerArray(ids.astype(np.int64), ~has_text)
    table["cluster_label"] = names_per_row(ids, has_text, edited.names)
    if "tags" in table.columns:  # an input column of that name keeps its values under another
        table = table.rename(columns={"tags": _free_column(table.columns, "tags_input")})
    joined = np.full(len(edited.labels), "", dtype=object)
    for i, tags in edited.tags.items():
        joined[i] = TAGS_JOINER.join(tags)
    table["tags"] = pd.array(np.where(has_text, joined[safe], ""), dtype="string")
    return table


def _free_column(columns: Iterable[Any], base: str) -> str:
    taken, name, number = {str(c) for c in columns}, base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    return name


def edited_clusters(
    result: Result, edited: Edited, cache_dir: str | Path | Cache | None = None
) -> pd.DataFrame:
    """The cluster summary after the edits. A cluster whose texts are exactly one of the run's
    clusters keeps the run's keywords and representative texts; any other (merged, moved into or
    out of, a split's piece, a new cluster) gets them as the label stage would give a run that
    found it: keywords scored on all its texts against the other clusters, examples the texts
    nearest their centre. ``merged_from``: the run's clusters it holds most of, when two or more;
    ``tags``: its rows per tag ("refund: 12; urgent: 3", most first).

    ``cache_dir`` is the run's cache, where the label stage keeps the word counts per text; without
    it they are counted again, once per process and corpus, the first time a change is shown."""
    counts = result.corpus.counts
    total = max(int(counts.sum()), 1)
    same = _same_as_run(result.clustering.labels, edited.labels)
    changed = {int(c) for c in np.unique(edited.labels)} - set(same)
    summaries = _summaries(result, edited.labels, cache_dir) if changed else {}
    sources = _sources(result, edited)
    sizes = pd.Series(counts).groupby(edited.labels).sum()
    tags = _tag_counts(edited, counts)
    run_own = _run_summaries(result)
    rows = []
    for cid in sorted((int(c) for c in sizes.index), key=lambda c: (c == -1, c)):
        _, keywords, examples = run_own[same[cid]] if cid in same else summaries[cid]
        size = int(sizes[cid])
        merged = sorted(sources.get(cid, ()))
        rows.append(
            {
                "id": cid,
                "label": edited.names.get(cid, str(cid)),
                "size": size,
                "share": round(size / total, 4),
                "keywords": keywords,
                "representative_texts": examples,
                "merged_from": ", ".join(map(str, merged)) if len(merged) > 1 else "",
                "tags": tags.get(cid, ""),
            }
        )
    return pd.DataFrame(rows)


def _pairs(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (first, second) id pairs that occur, sorted by first then second, as a (2, m) array,
    and how often each occurs: ``np.unique(np.stack(...), axis=1, return_counts=True)`` through
    one integer per pair (the axis form sorts the rows of a stacked view: 0.1 s per call on
    100,000 texts, twice on every edit; this, 0.005 s)."""
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    if not len(first):
        return np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.int64)
    low, span = int(second.min()), int(second.max() - second.min()) + 1
    codes, counts = np.unique((first - int(first.min())) * span + (second - low), return_counts=True)
    return np.stack([codes // span + int(first.min()), codes % span + low]), counts


def _same_as_run(run: np.ndarray, edited: np.ndarray) -> dict[int, int]:
    """Edited cluster -> the run's cluster with exactly its texts, for those that have one."""
    pairs, _ = _pairs(edited, run)  # (edited id, run id) pairs that occur
    one_source = {int(e): int(r) for e, r in pairs.T if (pairs[0] == e).sum() == 1}
    run_sizes = dict(zip(*np.unique(run, return_counts=True), strict=True))
    edited_sizes = dict(zip(*np.unique(edited, return_counts=True), strict=True))
    return {e: r for e, r in one_source.items() if run_sizes[r] == edited_sizes[e]}


def _tag_counts(edited: Edited, counts: np.ndarray) -> dict[int, str]:
    """Per edited cluster, its rows per tag: "refund: 12; urgent: 3" (most rows first)."""
    per: dict[int, dict[str, int]] = {}
    for i, tags in edited.tags.items():
        cluster = per.setdefault(int(edited.labels[i]), {})
        for t in tags:
            cluster[t] = cluster.get(t, 0) + int(counts[i])
    return {
        cid: "; ".join(f"{t}: {n}" for t, n in sorted(found.items(), key=lambda x: (-x[1], x[0])))
        for cid, found in per.items()
    }


def _summaries(
    result: Result, labels: np.ndarray, cache_dir: str | Path | Cache | None
) -> dict[int, tuple[str, str, str]]:
    """(keyword label, keywords, representative texts) of each cluster of a clustering with these
    ``labels``: a cluster with exactly the texts of one of the run's has the run's; the others are
    scored by the label stage's own summary, headed apart from the heads the run's clusters show
    (``summarise``'s ``only`` and ``taken``). Remembered by the result's labels key and the labels."""
    run = result.keys.get("labels")
    digest = array_digest(labels, np.int64)
    if run is not None and (run, digest) in _SUMMARIES:
        return _SUMMARIES[run, digest]
    same = _same_as_run(result.clustering.labels, labels)
    run_own = _run_summaries(result)
    heads = [run_own[own][1].split(", ")[0] for cid, own in same.items() if cid >= 0]
    clustering = dataclasses.replace(result.clustering, labels=np.asarray(labels, dtype=np.int64))
    ctx = detached("label", cache=_Remembered(cache_dir))
    frame, _ = label_stage.summarise(
        result.corpus,
        result.embeddings,
        clustering,
        result.config.label,
        ctx,
        only={int(c) for c in np.unique(labels)} - set(same),
        taken=heads,
    )
    out = {
        int(cid): (str(label), ", ".join(keywords), " | ".join(examples))
        for cid, label, keywords, examples in zip(
            frame["id"], frame["label"], frame["keywords"], frame["representatives"], strict=True
        )
    }
    out |= {cid: run_own[own] for cid, own in same.items()}  # the run's own summary
    if run is not None:
        _keep(_SUMMARIES, (run, digest), out, SUMMARIES_KEPT)
    return out


def _run_summaries(result: Result) -> dict[int, tuple[str, str, str]]:
    """(label, keywords, representative texts) of each of the run's clusters, by id (as a dict: a
    ``.loc`` per cluster took 0.1 s of a merge at 332 clusters; no cluster tree is built)."""
    base = result.clusters(parents=False)
    columns = (base["label"], base["keywords"], base["representative_texts"])
    return {int(c): tuple(map(str, row)) for c, *row in zip(base["id"], *columns, strict=True)}


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
        remember: bool = False,
    ) -> tuple[T, bool]:
        if (kind, key) in _PIECES:
            return _PIECES[kind, key], True
        backing = self.backing
        if backing is not None and not isinstance(backing, Cache):
            backing = Cache(backing)
        if backing is None:
            value, hit = compute(), False
        else:
            value, hit = backing.get_or_compute(kind, key, compute, on_corrupt, keep, mmap, remember)
        _keep(_PIECES, (kind, key), value, PIECES_KEPT)
        return value, hit


# --- the cluster tree as edits -------------------------------------------------------------------


def current_ids(result: Result, edited: Edited) -> dict[int, int]:
    """Each cluster of the result -> the edited cluster holding most of its texts (all of them,
    unless texts were moved out or the cluster was split; ties: the smaller id). A cluster all of
    whose texts were moved to the unclustered is left out."""
    run, now = result.clustering.labels, edited.labels
    kept = (run >= 0) & (now >= 0)
    pairs, n = _pairs(run[kept], now[kept])
    best: dict[int, tuple[int, int]] = {}
    for (r, e), k in zip(pairs.T.tolist(), n.tolist(), strict=True):
        if r not in best or k > best[r][1]:  # pairs come sorted: on a tie the smaller id stays
            best[r] = (e, k)
    return {r: e for r, (e, _) in sorted(best.items())}


def _sources(result: Result, edited: Edited) -> dict[int, set[int]]:
    """Each edited cluster -> the result's clusters it holds most of; a cluster that holds most
    of none (a new cluster, a split's other pieces) -> the result's cluster most of its texts came
    from. Clusters made only of unclustered texts are left out."""
    out: dict[int, set[int]] = {}
    for r, e in current_ids(result, edited).items():
        out.setdefault(e, set()).add(r)
    run = result.clustering.labels
    for e in set(np.unique(edited.labels).tolist()) - set(out) - {-1}:
        origin = run[(edited.labels == e) & (run >= 0)]
        if len(origin):
            out[e] = {int(np.bincount(origin).argmax())}
    return out


def cluster_rows(result: Result, edited: Edited) -> dict[int, int]:
    """Rows per cluster after the edits."""
    sizes = pd.Series(result.corpus.counts).groupby(edited.labels).sum()
    return {int(c): int(n) for c, n in sizes.items()}


def tree_level(result: Result, edited: Edited, n_groups: int) -> list[list[int]]:
    """The edited clusters grouped as the cluster tree groups them once ``n_groups`` remain: one
    list of edited cluster ids per group, largest group first.

    The tree is over the result's clusters; an edited cluster sits with the clusters it came from
    (``_sources``), so an earlier merge that joined clusters of two groups joins those groups too
    (a cluster cannot sit in two groups), and a split's pieces stay with their cluster's group. A
    cluster made only of unclustered texts is a group of its own."""
    cut = result.tree.cut(n_groups)
    sources = _sources(result, edited)
    groups: dict[int, set[int]] = {}
    for cid, origins in sources.items():
        for origin in origins:
            groups.setdefault(cut[origin], set()).add(cid)
    # union groups that share an edited cluster (order kept: the first group's number wins)
    joined: list[set[int]] = []
    for _, members in sorted(groups.items()):
        overlapping = [g for g in joined if g & members]
        for g in overlapping:
            members |= g
            joined.remove(g)
        joined.append(members)
    joined += [{c} for c in np.unique(edited.labels).tolist() if c >= 0 and c not in sources]
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
    smallest node holding all its clusters; a split's piece or a new cluster, that of the cluster
    its texts came from (``_sources``). Empty for the unclustered and for a cluster made only of
    unclustered texts."""
    tree = result.tree
    parent_of = tree.parent_of()
    covers = [(int(n.id), int(n.parent_id), set(n.clusters)) for n in tree.nodes.itertuples()]
    origins = _sources(result, edited)
    parents: list[int | None] = []
    for cid in clusters["id"]:
        sources = origins.get(int(cid), set()) if int(cid) >= 0 else set()
        if len(sources) <= 1:
            parent = parent_of.get(min(sources), -1) if sources else -1
        else:
            node, up, held = min((n for n in covers if sources <= n[2]), key=lambda n: len(n[2]))
            parent = up if held == sources else node
        parents.append(parent if parent >= 0 else None)
    return clusters.assign(parent_id=pd.array(parents, dtype="Int64"))
