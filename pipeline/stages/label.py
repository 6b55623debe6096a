"""label: c-TF-IDF keywords per cluster, a short readable label, representative texts.

With ``label.method = "llm"`` a language model then names each cluster (largest first, up to
``label.llm.max_clusters``) from its keywords and the texts closest to its centre; see
``pipeline.llm``. A cluster the model could not name keeps its keyword label, and the result
says why.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import llm, terms
from ..cache import array_texts_digest, chain_key
from ..config import LabelParams, LLMParams, PipelineConfig
from ..context import Runtime, StageContext, detached
from ..errors import StageError
from ..types import NOISE_LABEL, Clustering, Corpus, Embeddings, LabelFallback, Labels
from .base import PlanContext, Stage

VERSION = 5  # 3: stop words by language (auto), word forms joined, CJK and Thai terms; 4: their final form
# 5: scores weighted by the share of a cluster's distinct texts; apostrophes; letter-digit tokens; heads
MAX_FEATURES = 50_000
MIXED_SHARE = 1 / 3  # a letter-digit token ("kaa24242") is a keyword only in this share of the texts
SIMILAR_HEAD = 0.5  # a keyword this close to the first one's score may head the label instead
PHRASE_SHARE = 0.5  # a phrase takes the place of its chosen parts when it scores this much of them
KEYWORDS_DONE = 0.3  # share of the stage's progress bar for the keyword part when a model follows


def _vectorize(texts: list[str], params: LabelParams, n_texts: int):
    """(term counts per text, term keys, the form each key is shown as, language codes)."""
    from sklearn.feature_extraction.text import CountVectorizer

    stop_words, codes = terms.resolve_stop_words(params.stop_words, texts)
    analyzer = terms.Analyzer(stop_words, codes, params.max_ngram)
    vectorizer = CountVectorizer(
        analyzer=analyzer,
        min_df=2 if n_texts >= 2_000 else 1,
        max_features=MAX_FEATURES,
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words, digits or symbols
        empty = np.array([], dtype=object)
        return None, empty, empty, codes
    keys = vectorizer.get_feature_names_out()
    shown = np.array([analyzer.surface(str(k)) for k in keys], dtype=object)
    return matrix, keys, shown, codes


def terms_key(texts: np.ndarray, params: LabelParams) -> str:
    """The cache key of the term counts of a corpus's ``texts`` (only the settings that change
    them); the texts' digest is computed once per process (``cache.array_texts_digest``)."""
    digest = array_texts_digest(texts)
    return chain_key("label_terms", VERSION, params.stop_words, params.max_ngram, digest)


def ctfidf(counts: sp.spmatrix) -> np.ndarray:
    """Class-based TF-IDF (one row per cluster): tf within the cluster x log(1 + avg / df)."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    tf = sp.diags(1.0 / np.maximum(totals, 1)) @ counts
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    avg = totals.mean() if len(totals) else 0.0
    idf = np.log1p(avg / np.maximum(term_freq, 1))
    return (tf @ sp.diags(idf)).toarray()


def keyword_scores(
    ctfidf_row: np.ndarray, share: np.ndarray, outside: np.ndarray, mixed: np.ndarray
) -> np.ndarray:
    """A cluster's term scores: c-TF-IDF (duplicates with their multiplicity) times the share of
    the cluster's distinct texts that contain the term, so a name a few texts repeat does not
    outrank a word most of them share, times the share of the other texts that lack it, so a
    word most texts of every cluster use ("said" in news) does not head them all. A letter-digit
    token ("kaa24242") counts only when at least ``MIXED_SHARE`` of the cluster's texts have it
    ("covid19" in a cluster about it)."""
    scores = ctfidf_row * share * (1.0 - outside)
    scores[mixed & (share < MIXED_SHARE)] = 0.0
    return scores


def _scored_keywords(
    membership: sp.csr_matrix,
    matrix: sp.spmatrix,
    keys: np.ndarray,
    shown: np.ndarray,
    n: int,
    rows: list[int] | None = None,
) -> list[list[tuple[str, float]]]:
    """(keyword, score), best first, per row of ``membership`` (a cluster: the multiplicity of
    each of its texts), or of those ``rows`` of it only (every row still weighs in the scores)."""
    scores = ctfidf(membership @ matrix)
    member = (membership > 0).astype(np.float64)
    holds = (matrix > 0).astype(np.float64)
    present = sp.csr_matrix(member @ holds)  # distinct texts of each cluster holding each term
    distinct = np.asarray(member.sum(axis=1)).ravel()
    everywhere = np.asarray(holds.sum(axis=0)).ravel()
    mixed = np.array([terms.mixes_letters_and_digits(str(k)) for k in keys], dtype=bool)
    out = []
    for row in range(membership.shape[0]) if rows is None else rows:
        inside = present[row].toarray().ravel()
        share = inside / max(distinct[row], 1)
        outside = (everywhere - inside) / max(holds.shape[0] - distinct[row], 1)  # of the other texts
        out.append(_pick_keywords(keys, shown, keyword_scores(scores[row], share, outside, mixed), n))
    return out


def _pick_keywords(
    keys: np.ndarray, shown: np.ndarray, scores: np.ndarray, n: int
) -> list[tuple[str, float]]:
    """(keyword, score), best terms first, shown in their most common form; a term whose words
    (word forms joined: "crash" = "crashes") are already inside a chosen phrase is skipped, a
    phrase replaces the chosen terms it contains (when it scores at least ``PHRASE_SHARE`` of
    them; a weaker one, "perl script" in one text beside "perl" in thirty, is skipped), and in
    scripts without spaces a term sharing two characters in a row with a chosen one is skipped."""
    chosen: list[tuple[set[str], str, float]] = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] <= 0 or len(chosen) >= n:
            break
        words = set(str(keys[index]).split())
        text = str(shown[index])
        if any(text == t or words <= w for w, t, _ in chosen):
            continue  # said already, by this term or a phrase holding all its words
        if terms.is_spaceless(text) and any(
            terms.is_spaceless(t) and terms.overlaps(text, t) for _, t, _ in chosen
        ):
            continue  # Chinese, Japanese, Thai: shares a word (two characters) with a chosen term
        # keep the phrase over its parts: it takes the place of the first chosen term it contains
        parts = [i for i, (w, _, _) in enumerate(chosen) if w < words]
        if parts and scores[index] < PHRASE_SHARE * max(chosen[i][2] for i in parts):
            continue
        place = parts[0] if parts else len(chosen)
        chosen = [c for i, c in enumerate(chosen) if i not in parts]
        chosen.insert(place, (words, text, float(scores[index])))
    return [(t, score) for _, t, score in chosen[:n]]


def distinct_heads(
    scored: dict[int, list[tuple[str, float]]], taken_by_others: Iterable[str] = ()
) -> dict[int, list[str]]:
    """Each cluster's keywords, reordered so that no two clusters' labels start with the same
    keyword where another can. A cluster may be headed by any of its keywords scoring at least
    ``SIMILAR_HEAD`` of its best; clusters with fewest such choices pick first (then the larger,
    smaller id), each its best choice no other cluster heads with (nor one of
    ``taken_by_others``, the heads of clusters not in ``scored``). A cluster left without one
    keeps its order. The unclustered (-1) take part in nothing."""
    choices = {
        cid: [t for t, s in pairs if s >= SIMILAR_HEAD * pairs[0][1]]
        for cid, pairs in scored.items()
        if cid >= 0 and pairs
    }
    taken: set[str] = {t.casefold() for t in taken_by_others}
    head: dict[int, str] = {}
    for cid in sorted(choices, key=lambda c: (len(choices[c]), c)):
        free = next((t for t in choices[cid] if t.casefold() not in taken), choices[cid][0])
        head[cid] = free
        taken.add(free.casefold())
    out: dict[int, list[str]] = {}
    for cid, pairs in scored.items():
        words = [t for t, _ in pairs]
        if cid in head:
            words.remove(head[cid])
            words.insert(0, head[cid])
        out[cid] = words
    return out


def _short(text: str, limit: int = 60) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def make_label(keywords: list[str], words: int, fallback: str) -> str:
    if not keywords:
        return _short(fallback, 40) or "(no words)"
    return ", ".join(keywords[:words])


def unique_labels(labels: dict[int, str], keywords: dict[int, list[str]], words: int) -> dict[int, str]:
    """No two clusters share a label: extend with the next keyword, then number (``distinct_heads``
    has already kept their first keywords apart where it could)."""
    out: dict[int, str] = {}
    seen: set[str] = set()
    for cid in sorted(labels):
        label = labels[cid]
        extra = words
        while label.casefold() in seen and extra < len(keywords.get(cid, [])):
            extra += 1
            label = ", ".join(keywords[cid][:extra])
        number = 2
        base = label
        while label.casefold() in seen:
            label = f"{base} ({number})"
            number += 1
        seen.add(label.casefold())
        out[cid] = label
    return out


def representatives(vectors: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` members closest (cosine) to the members' mean direction."""
    centroid = vectors[members].mean(axis=0)
    norm = np.linalg.norm(centroid)
    if norm == 0 or len(members) <= n:
        return members[:n]
    similarity = vectors[members] @ (centroid / norm)
    return members[np.argsort(-similarity, kind="stable")[:n]]


def label(
    corpus: Corpus,
    embeddings: Embeddings,
    clustering: Clustering,
    params: LabelParams,
    ctx: StageContext | None = None,
) -> Labels:
    """Summarise each cluster: keywords, a short unique label, representative texts
    (and with ``method = "llm"``, a model-written label and description)."""
    ctx = ctx or detached("label")
    share = KEYWORDS_DONE if params.method == "llm" else 1.0
    frame, members = summarise(corpus, embeddings, clustering, params, ctx, share)
    if params.method != "llm":
        return Labels(clusters=frame)
    return _label_with_llm(frame, members, corpus, embeddings, params, ctx)


def summarise(
    corpus: Corpus,
    embeddings: Embeddings,
    clustering: Clustering,
    params: LabelParams,
    ctx: StageContext,
    share: float = 1.0,
    only: Collection[int] | None = None,
    taken: Iterable[str] = (),
) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """The keyword summary (one row per cluster) and each cluster's member indices.

    ``only``: the rows of these clusters alone (an edit's changed clusters: every cluster still
    weighs in the keyword scores), their keywords headed apart from ``taken`` (the heads the
    other clusters show) as ``distinct_heads`` keeps them apart from each other. Choosing the
    keywords and examples of all 332 clusters took 0.2 s of each merge at 100,000 texts."""
    ids = sorted(set(clustering.labels.tolist()))
    chosen = ids if only is None else sorted(set(ids) & {int(c) for c in only})
    texts, n = corpus.texts, len(corpus.texts)
    ctx.progress(0.1 * share, f"counting words in {n:,} distinct texts")
    # the counts depend on the texts, not on the clusters: a re-clustering loads them, and they
    # are kept in the process too: a slider step, a merge and the next step read the same counts
    # (a joblib load of 0.07 s at 100,000 texts)
    (matrix, keys, shown, codes), _ = ctx.piece(
        "label_terms",
        terms_key(texts, params),
        lambda: _vectorize([str(t) for t in texts], params, n),
        remember=True,
    )
    row_of = {cid: i for i, cid in enumerate(ids)}
    membership = sp.csr_matrix(
        (
            corpus.counts.astype(np.float64),  # duplicates count with their multiplicity
            (np.searchsorted(ids, clustering.labels), np.arange(n)),  # ids are sorted: each its row
        ),
        shape=(len(ids), n),
    )
    stops = "no stop words" if params.stop_words == "none" else f"{'/'.join(codes)} stop words"
    ctx.progress(0.6 * share, f"choosing keywords ({stops}) and examples for {len(chosen)} groups")
    total_rows = int(corpus.counts.sum())
    if matrix is None:
        keywords_of = {cid: [] for cid in chosen}
    else:
        scored = _scored_keywords(
            membership, matrix, keys, shown, params.n_keywords, [row_of[c] for c in chosen]
        )
        keywords_of = distinct_heads(dict(zip(chosen, scored, strict=True)), taken)
    rows, raw_labels, members_of = [], {}, {}
    for cid in chosen:
        members = np.flatnonzero(clustering.labels == cid)
        members_of[cid] = members
        size = int(corpus.counts[members].sum())
        reps = representatives(embeddings.vectors, members, max(params.n_representatives, 1))
        keywords = keywords_of[cid]
        raw_labels[cid] = make_label(keywords, params.label_words, str(texts[reps[0]]))
        rows.append(
            {
                "id": cid,
                "size": size,
                "share": size / total_rows,
                "keywords": keywords,
                "representatives": [str(texts[i]) for i in reps[: params.n_representatives]],
            }
        )
    named = unique_labels(
        {c: text for c, text in raw_labels.items() if c != -1}, keywords_of, params.label_words
    )
    named[-1] = NOISE_LABEL
    frame = pd.DataFrame(rows, columns=["id", "size", "share", "keywords", "representatives"])
    frame.insert(1, "label", [named[c] for c in frame["id"]])
    frame["description"] = ""
    frame["source"] = "keywords"
    # clusters first by id (0 = largest), unclustered last
    frame = frame.sort_values("id", key=lambda s: s.where(s >= 0, np.iinfo(np.int64).max))
    return frame.reset_index(drop=True), members_of


# --- labels from a language model -----------------------------------------------------------


def llm_requests(
    frame: pd.DataFrame,
    members: dict[int, np.ndarray],
    corpus: Corpus,
    embeddings: Embeddings,
    params: LabelParams,
) -> tuple[list[llm.ClusterRequest], list[int]]:
    """One request per cluster, largest first, up to label.llm.max_clusters; and the ids left out.

    Noise is never sent. A request's key is its cluster's content (member texts, keywords,
    examples), so a cluster that keeps its members keeps its cached answer under any id.
    """
    clusters = frame[frame["id"] >= 0].sort_values(["size", "id"], ascending=[False, True], kind="stable")
    ids = [int(c) for c in clusters["id"]]
    cap = params.llm.max_clusters
    chosen, capped = (ids[:cap], ids[cap:]) if cap else (ids, [])
    texts = [str(t) for t in corpus.texts]
    hashes = [llm.text_hash(t) for t in texts] if chosen else []
    row = frame.set_index("id")
    requests = []
    for cid in chosen:
        mine = members[cid]
        examples = representatives(embeddings.vectors, mine, params.llm.examples)
        messages = llm.build_messages(row.at[cid, "keywords"], [texts[i] for i in examples])
        digest = llm.members_digest(hashes[i] for i in mine)
        requests.append(
            llm.ClusterRequest(
                cid, int(row.at[cid, "size"]), llm.request_key(params.llm, digest, messages), messages
            )
        )
    return requests, capped


def plan_requests(
    corpus: Corpus,
    embeddings: Embeddings,
    clustering: Clustering,
    params: LabelParams,
    summary: pd.DataFrame | None = None,
) -> tuple[list[llm.ClusterRequest], list[int]]:
    """The requests a run with ``params`` would make (for plans and cost estimates).

    ``summary``: this clustering's keyword summary, when a label run with the same keyword settings
    made it (``Labels.clusters``): the prompts are built from it instead of counting the words again
    (0.8 s of every slider step at 10,000 texts went to that)."""
    if summary is None:
        frame, members = summarise(corpus, embeddings, clustering, params, detached("label"))
    else:
        frame, members = summary, members_of(clustering.labels)
    return llm_requests(frame, members, corpus, embeddings, params)


def members_of(labels: np.ndarray) -> dict[int, np.ndarray]:
    """Each cluster id's member indices (ascending), in one sort."""
    order = np.argsort(labels, kind="stable")
    ids, starts = np.unique(labels[order], return_index=True)
    return {int(c): order[a:b] for c, a, b in zip(ids, starts, [*starts[1:], len(order)], strict=True)}


def same_keywords(a: LabelParams, b: LabelParams) -> bool:
    """Whether two label settings give the same keyword summary (they may differ in naming)."""
    return dataclasses.replace(a, method=b.method, llm=b.llm) == b


def _label_with_llm(
    frame: pd.DataFrame,
    members: dict[int, np.ndarray],
    corpus: Corpus,
    embeddings: Embeddings,
    params: LabelParams,
    ctx: StageContext,
) -> Labels:
    requests, capped = llm_requests(frame, members, corpus, embeddings, params)
    where = f"{params.llm.model} at {params.llm.base_url}"
    ctx.progress(
        KEYWORDS_DONE,
        f"asking {where} to label {len(requests)} clusters"
        + (f" (the largest; {len(capped)} smaller keep keyword labels)" if capped else ""),
    )
    outcome = llm.request_labels(requests, params.llm, ctx, start=KEYWORDS_DONE, end=0.95)
    replies = _distinct(outcome, requests, params, ctx)
    failures = outcome.failures
    if failures and not params.llm.allow_partial:
        raise StageError(
            ctx.stage,
            f"{len(failures)} of {len(requests)} clusters got no label from {where}: "
            + "; ".join(f"cluster {cid}: {reason}" for cid, reason in sorted(failures.items())[:5])
            + ("; ..." if len(failures) > 5 else ""),
            hint=f"the {len(replies)} finished labels are cached: run again to retry only these clusters, "
            "or set label.llm.allow_partial=true to keep keyword labels for them",
        )
    if failures:
        ctx.warn(
            f"{len(failures)} of {len(requests)} clusters kept keyword labels because the API call failed "
            f"(first: cluster {min(failures)}: {failures[min(failures)]}); running again retries only those"
        )
    frame = frame.copy()
    index = {cid: i for i, cid in enumerate(frame["id"])}
    for cid, reply in replies.items():
        frame.loc[index[cid], ["label", "description", "source"]] = [
            reply["label"],
            reply["description"],
            "llm",
        ]
    frame["label"] = _numbered(frame)
    fallbacks = [LabelFallback(cid, reason, "failed") for cid, reason in failures.items()]
    fallbacks += [
        LabelFallback(cid, f"not sent: beyond label.llm.max_clusters = {params.llm.max_clusters}", "capped")
        for cid in capped
    ]
    return Labels(
        clusters=frame,
        method="llm",
        fallbacks=tuple(sorted(fallbacks, key=lambda f: f.cluster)),
        llm={
            "model": params.llm.model,
            "base_url": params.llm.base_url,
            "prompt_version": llm.PROMPT_VERSION,
            "clusters_sent": len(requests),
            "labeled_by_model": len(replies),
            "calls": outcome.requested,
            "from_cache": outcome.from_cache,
        },
    )


def _key(label: str) -> str:
    return re.sub(r"\W+", " ", label.casefold()).strip()


def _distinct(
    outcome: llm.LabelReplies, requests: list[llm.ClusterRequest], params: LabelParams, ctx: StageContext
) -> dict[int, dict[str, str]]:
    """Answers with no label twice: a later (smaller) cluster whose label is taken is asked once more."""
    replies = dict(outcome.replies)
    taken: dict[str, int] = {}
    clashes = []
    for request in requests:  # largest first: the larger cluster keeps the label
        reply = replies.get(request.cluster)
        if reply is None:
            continue
        if _key(reply["label"]) in taken:
            clashes.append(request.ask_again(reply, reply["label"]))
        else:
            taken[_key(reply["label"])] = request.cluster
    if not clashes:
        return replies
    again = llm.request_labels(clashes, params.llm, ctx, start=0.95, end=1.0)
    outcome.requested += again.requested
    outcome.from_cache += again.from_cache
    for request in clashes:
        reply = again.replies.get(request.cluster)
        if reply is not None and _key(reply["label"]) not in taken:
            replies[request.cluster] = reply
            taken[_key(reply["label"])] = request.cluster
    return replies  # a label still taken is numbered by _numbered


def _numbered(frame: pd.DataFrame) -> list[str]:
    """Labels made unique over all clusters (model and keyword ones alike) by numbering repeats."""
    seen = {_key(NOISE_LABEL)}
    out = []
    for cid, label in zip(frame["id"], frame["label"], strict=True):
        if cid == -1:
            out.append(label)
            continue
        base, number = label, 2
        while _key(label) in seen:
            label = f"{base} ({number})"
            number += 1
        seen.add(_key(label))
        out.append(label)
    return out


# --- the stage's declaration ------------------------------------------------------------------


def _key_params(config: PipelineConfig, runtime: Runtime) -> LabelParams:
    # the model's settings change nothing while labels come from keywords
    if config.label.method == "llm":
        return config.label
    return dataclasses.replace(config.label, llm=LLMParams())


def _summary(labels: Labels) -> str:
    text = f"{len(labels.clusters)} groups labelled"
    if labels.method == "llm":
        by_model = int((labels.clusters["source"] == "llm").sum())
        text += f", {by_model} by {labels.llm.get('model', 'the model')}"
        failed = sum(f.kind == "failed" for f in labels.fallbacks)
        text += f", {failed} kept keyword labels after failed calls (not cached)" if failed else ""
    return text


def _plan_detail(plan: PlanContext) -> str:
    """With LLM labels: where they come from, and how many answers are cached already."""
    params = plan.config.label
    if params.method != "llm":
        return ""
    where = f"labels from {params.llm.model} at {params.llm.base_url}"
    try:
        found = plan.cached("corpus", "embeddings", "clustering")
    except Exception:
        return f"{where}; cache entry unreadable, it will be recomputed"
    if found is None:
        return where
    requests, _capped = plan_requests(*found, params)
    have = sum(plan.cache.contains(llm.PIECE_KIND, r.key) for r in requests)
    return f"{where}: {have} of {len(requests)} cluster labels cached, {len(requests) - have} API calls"


STAGE = Stage(
    name="label",
    title="Naming clusters",
    version=VERSION,
    inputs=("corpus", "embeddings", "clustering"),
    output="labels",
    artifact=Labels,
    params=_key_params,
    run=lambda a, config, ctx: label(a["corpus"], a["embeddings"], a["clustering"], config.label, ctx),
    summary=_summary,
    plan_detail=_plan_detail,
)
