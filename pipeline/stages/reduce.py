"""reduce: UMAP to a few dimensions for clustering, and a separate 2-D layout for the map."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import numpy as np

from ..config import ReduceParams
from ..context import StageContext, detached
from ..types import Embeddings, Projection
from .base import Bypass, Stage

VERSION = 2  # 2: reduce.fit_sample (fit on a sample, place the rest)
MIN_UMAP_POINTS = 10  # below this UMAP's graph is meaningless: a PCA projection is used
LAYOUT_MIN_DIST = 0.1
EPOCHS_LARGE = 200  # UMAP's own choice past 10,000 points; used from 2,000 (500 below that)
EPOCHS_FROM = 2_000
LAYOUT_EPOCHS_LARGE = 100  # the map is for the eye: half the epochs, half the time
EXACT_KNN_MAX = 50_000  # up to here exact neighbours (BLAS) beat NNDescent and its 30 s JIT
BLOCK_SCORES = 2**25  # scores per block of a brute-force search (128 MiB of float32)
TOP_K_PROBE = 1024  # columns sampled for each row's floor in _top_k
PROGRESS_EVERY_S = 1.0
EXACT_PLACE_MAX = 10**9  # placed x sampled pairs up to which a brute-force search beats NNDescent
INDEX_NEIGHBORS = 30  # NNDescent's default degree: 99% recall when placing (15 of 50,000)
PLACE_BLOCK = 5_000  # points placed between progress reports


def exact_knn(
    vectors: np.ndarray,
    k: int,
    metric: str,
    block: int = 0,
    on_block: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest points of every point (itself first), by brute force in blocks.

    ``block`` rows at a time (0 = sized to keep each block's scores near 128 MiB);
    ``on_block`` gets the fraction done after each block.
    """
    x = _prepared(vectors, metric)
    sq = (x * x).sum(axis=1)
    n = len(x)
    block = block or _block_rows(n)
    indices = np.empty((n, k), dtype=np.int32)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        scores = _scores(x[start:stop], x, sq, metric)
        own = np.arange(start, stop)
        scores[own - start, own] = np.inf  # each point is its own nearest neighbour
        indices[start:stop], distances[start:stop] = _nearest(scores, sq[start:stop], k, metric)
        if on_block is not None:
            on_block(stop / n)
    return indices, distances


def _prepared(vectors: np.ndarray, metric: str) -> np.ndarray:
    # float64 for euclidean: the |a|^2 + |b|^2 - 2ab form loses digits in float32
    x = np.asarray(vectors, dtype=np.float32 if metric == "cosine" else np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms == 0, 1, norms)
    return x


def _block_rows(n_columns: int) -> int:
    return int(np.clip(BLOCK_SCORES // max(n_columns, 1), 64, 2048))


def _scores(queries: np.ndarray, points: np.ndarray, sq: np.ndarray, metric: str) -> np.ndarray:
    """Larger is nearer: cosine similarity, or 2ab - |b|^2 (the squared distance minus |a|^2)."""
    scores = queries @ points.T
    if metric != "cosine":
        scores *= 2
        scores -= sq[None, :]
    return scores


def _nearest(scores: np.ndarray, query_sq: np.ndarray, k: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of each row's ``k`` best scores, nearest first."""
    idx = _top_k(scores, k)
    best = np.take_along_axis(scores, idx, axis=1)
    if metric == "cosine":
        dist = 1.0 - best
    else:
        dist = np.sqrt(np.maximum(query_sq[:, None] - best, 0))
    return idx, np.maximum(dist, 0).astype(np.float32)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest scores, largest first (ties: lower index)."""
    n, m = scores.shape
    if m <= 4 * TOP_K_PROBE:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(-scores, part, axis=1).argsort(axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1)
    # argpartition over every column is the slow part of a block; the k-th best score among a
    # spread of columns is a floor under the k-th best overall, and few scores clear it
    probe = scores[:, :: m // TOP_K_PROBE]
    floor = np.partition(probe, probe.shape[1] - k, axis=1)[:, -k]
    rows, cols = np.nonzero(scores >= floor[:, None])
    order = np.lexsort((cols, -scores[rows, cols], rows))
    counts = np.bincount(rows, minlength=n)
    starts = np.cumsum(counts) - counts
    return cols[order[starts[:, None] + np.arange(k)]].astype(np.int32)


def _span(ctx: StageContext, start: float, end: float, message: str) -> Callable[[float], None]:
    """Progress for one part of the stage: that part's fraction done -> the stage's fraction."""
    last = [-np.inf]

    def report(done: float) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or done >= 1:
            last[0] = now
            ctx.progress(start + (end - start) * done, f"{message} ({done:.0%})")

    return report


_numba_cache_on = False


def _cache_umap_compilation() -> None:
    """Let numba keep UMAP's compiled functions on disk, so only the first process pays
    the compile (about 4 s here; 30 s with NNDescent). UMAP does not ask for this itself."""
    global _numba_cache_on
    if _numba_cache_on:
        return
    import importlib

    from numba.core.dispatcher import Dispatcher

    modules = (
        "umap.umap_",
        "umap.layouts",
        "umap.spectral",
        "umap.utils",
        "umap.distances",
        "umap.sparse",
        "pynndescent.pynndescent_",
        "pynndescent.distances",
        "pynndescent.utils",
        "pynndescent.rp_trees",
        "pynndescent.sparse",
        "pynndescent.graph_utils",
    )
    for name in modules:
        module = importlib.import_module(name)
        for function in vars(module).values():
            if isinstance(function, Dispatcher):
                try:
                    function.enable_caching()
                except Exception:  # a function numba cannot cache is compiled as before
                    continue
    _numba_cache_on = True


def _pca(vectors: np.ndarray, n_components: int) -> np.ndarray:
    """PCA without randomness, padded with zeros when there are fewer dimensions than asked."""
    n, dim = vectors.shape
    out = np.zeros((n, n_components), dtype=np.float32)
    k = min(n_components, max(n - 1, 0), dim)
    if k > 0:
        centered = vectors - vectors.mean(axis=0, keepdims=True)
        _, _, vt = np.linalg.svd(centered.astype(np.float64), full_matrices=False)
        # fix each component's sign so results do not flip between LAPACK builds
        signs = np.sign(vt[:k].sum(axis=1, keepdims=True))
        signs[signs == 0] = 1
        out[:, :k] = centered @ (vt[:k] * signs).T
    return out


def passthrough(embeddings: Embeddings, ctx: StageContext | None = None) -> Projection:
    """``reduce`` switched off: cluster on the full embeddings; the map uses a PCA layout."""
    ctx = ctx or detached("reduce")
    ctx.progress(0.5, "reduce is off: clustering on the full embeddings; map from PCA")
    return Projection(
        coords=embeddings.vectors, layout=_pca(embeddings.vectors, 2), method="none", n_neighbors=0
    )


def fit_rows(n: int, params: ReduceParams) -> np.ndarray | None:
    """The rows UMAP is fitted on: a seeded random sample past ``reduce.fit_sample``; None = all."""
    if params.fit_sample == 0 or n <= params.fit_sample:
        return None
    return np.sort(np.random.default_rng(params.seed).choice(n, params.fit_sample, replace=False))


def reduce(embeddings: Embeddings, params: ReduceParams, ctx: StageContext | None = None) -> Projection:
    """Seeded UMAP (one shared neighbour graph for both outputs); PCA for tiny corpora.

    Past ``reduce.fit_sample`` distinct texts UMAP is fitted on a seeded random sample of that
    many, and every other text is placed among its nearest sampled neighbours (``place``).
    """
    ctx = ctx or detached("reduce")
    vectors = embeddings.vectors
    n = len(vectors)
    if n < MIN_UMAP_POINTS:
        ctx.warn(f"only {n} distinct texts: UMAP needs {MIN_UMAP_POINTS}; using PCA instead")
        return Projection(coords=_pca(vectors, params.n_components), layout=_pca(vectors, 2), method="pca")
    rows = fit_rows(n, params)
    sample = vectors if rows is None else vectors[rows]
    m = len(sample)
    n_neighbors = min(params.n_neighbors, m - 1)
    if n_neighbors < params.n_neighbors:
        ctx.warn(
            f"reduce.n_neighbors={params.n_neighbors} is more than the {m} distinct texts allow; "
            f"using {n_neighbors}"
        )
    if rows is not None:
        ctx.warn(
            f"UMAP was fitted on a random sample of {m:,} of the {n:,} distinct texts "
            f"(reduce.fit_sample={params.fit_sample:,}); the other {n - m:,} were placed among their "
            f"{n_neighbors} nearest sampled texts. reduce.fit_sample=0 fits on all of them (much slower)"
        )
    # fractions of the stage: the fit's share shrinks as more points are placed afterwards
    fit_end = 1.0 if rows is None else 0.35
    ctx.progress(0.02, "loading UMAP (first use in a process compiles it)")
    import umap

    _cache_umap_compilation()
    ctx.progress(0.05 * fit_end, f"finding {n_neighbors} nearest neighbours of {m:,} points")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        index = None
        if rows is not None and (n - m) * m > EXACT_PLACE_MAX:
            # placing needs a search index over the sample anyway; its graph is the sample's kNN
            ctx.progress(0.05 * fit_end, f"indexing the {m:,} sampled points (NNDescent)")
            index = _index(sample, n_neighbors, params)
            found, gaps = index.neighbor_graph
            knn: tuple = (
                np.ascontiguousarray(found[:, :n_neighbors]),
                np.ascontiguousarray(gaps[:, :n_neighbors]),
            )
        elif m <= EXACT_KNN_MAX:
            span = _span(ctx, 0.05 * fit_end, 0.35 * fit_end, f"nearest neighbours of {m:,} points")
            knn = exact_knn(sample, n_neighbors, params.metric, on_block=span)
        else:
            from umap.umap_ import nearest_neighbors

            knn = nearest_neighbors(
                sample,
                n_neighbors,
                params.metric,
                {},
                False,
                np.random.RandomState(params.seed),
                n_jobs=1,
            )
        ctx.progress(0.35 * fit_end, f"UMAP to {params.n_components} dimensions for clustering")

        def fit(n_components: int, min_dist: float, epochs: int) -> umap.UMAP:
            model = umap.UMAP(
                n_components=n_components,
                n_neighbors=n_neighbors,
                min_dist=min_dist,
                metric=params.metric,
                random_state=params.seed,
                n_jobs=1,
                precomputed_knn=knn,
                low_memory=True,
                n_epochs=epochs if m >= EPOCHS_FROM else None,
            )
            model.fit(sample)
            return model

        models = [fit(params.n_components, params.min_dist, EPOCHS_LARGE)]
        ctx.progress(0.7 * fit_end, "UMAP to 2 dimensions for the map")
        models.append(fit(2, max(params.min_dist, LAYOUT_MIN_DIST), LAYOUT_EPOCHS_LARGE))
        if rows is None:
            coords, layout = (np.asarray(model.embedding_, dtype=np.float32) for model in models)
        else:
            coords, layout = place(vectors, rows, models, knn, params, ctx, index, start=fit_end)
    return Projection(
        coords=coords,
        layout=layout,
        method="umap",
        n_neighbors=n_neighbors,
        fitted_on=0 if rows is None else m,
    )


def place(
    vectors: np.ndarray,
    rows: np.ndarray,
    models: list,
    knn: tuple,
    params: ReduceParams,
    ctx: StageContext,
    index=None,
    start: float = 0.0,
) -> list[np.ndarray]:
    """Every model's coordinates for all ``vectors``: the fitted ``rows`` keep theirs, and each
    other point goes among its nearest fitted points (``_settle``), found by brute force or, when
    given, in ``index`` (an NNDescent index over the fitted points)."""
    n = len(vectors)
    k = knn[0].shape[1]
    rest = np.ones(n, dtype=bool)
    rest[rows] = False
    rest = np.flatnonzero(rest)
    fitted = [np.ascontiguousarray(model.embedding_, dtype=np.float32) for model in models]
    radii = [_edge_length(f, knn[0]) for f in fitted]
    outs = []
    for f in fitted:
        out = np.empty((n, f.shape[1]), dtype=np.float32)
        out[rows] = f
        outs.append(out)
    search = _searcher(vectors[rows], k, params.metric, index)
    span = _span(ctx, start + 0.05 * (1 - start), 1.0, f"placing {len(rest):,} points among the sample")
    block = PLACE_BLOCK
    for first in range(0, len(rest), block):
        ids = rest[first : first + block]
        indices, distances = search(vectors[ids])
        weights = _memberships(distances, k)
        for out, f, radius in zip(outs, fitted, radii, strict=True):
            out[ids] = _settle(indices, weights, f, radius)
        span(min(first + block, len(rest)) / len(rest))
    return outs


def _index(sample: np.ndarray, k: int, params: ReduceParams):
    """An NNDescent search index over the sample (its numba code is cached on disk, see above)."""
    from pynndescent import NNDescent

    index = NNDescent(
        sample,
        metric=params.metric,
        n_neighbors=max(INDEX_NEIGHBORS, k),
        random_state=params.seed,
        n_jobs=1,
        low_memory=True,
    )
    index.prepare()
    return index


def _searcher(
    sample: np.ndarray, k: int, metric: str, index=None
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A function from query vectors to their ``k`` nearest sampled points and the distances:
    in ``index`` when there is one, else by brute force (BLAS)."""
    if index is not None:
        epsilon = 0.24 if index._angular_trees else 0.12  # as umap's transform searches

        def approximate(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            indices, distances = index.query(queries, k=k, epsilon=epsilon)
            return indices.astype(np.int32), np.maximum(distances, 0).astype(np.float32)

        return approximate
    x = _prepared(sample, metric)
    sq = (x * x).sum(axis=1)

    def exact(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = _prepared(queries, metric)
        step = _block_rows(len(x))
        parts = [q[i : i + step] for i in range(0, len(q), step)]
        found = [_nearest(_scores(b, x, sq, metric), (b * b).sum(axis=1), k, metric) for b in parts]
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

    return exact


def _memberships(distances: np.ndarray, k: int) -> np.ndarray:
    """UMAP's membership strength of each query's edge to each of its neighbours (as in transform)."""
    from umap.umap_ import smooth_knn_dist

    sigmas, rhos = smooth_knn_dist(distances, float(k), local_connectivity=0.0)
    gap = np.maximum(distances - rhos[:, None], 0)
    scale = np.where(sigmas > 0, sigmas, 1.0)[:, None]
    return np.where(sigmas[:, None] > 0, np.exp(-gap / scale), 1.0).astype(np.float32)


def _settle(indices: np.ndarray, weights: np.ndarray, fixed: np.ndarray, radius: float) -> np.ndarray:
    """Each new point at the membership-weighted mean of those of its neighbours that sit within
    ``radius`` of its nearest one in ``fixed`` (the fitted coordinates).

    A plain mean (UMAP's ``transform`` start) puts a point whose neighbours fall in two clusters
    between them, and such bridges merge clusters; its optimisation epochs did not undo that.
    """
    around = fixed[indices]
    near = np.linalg.norm(around - around[:, :1], axis=2) <= radius
    share = weights * near
    share /= share.sum(axis=1, keepdims=True)  # the nearest neighbour is always in
    return np.einsum("ij,ijd->id", share, around).astype(np.float32)


def _edge_length(fixed: np.ndarray, knn_indices: np.ndarray) -> float:
    """The median distance, in the fitted coordinates, between sampled points and their neighbours."""
    step = max(1, len(fixed) // 20_000)  # a spread of rows is enough for a median
    rows = knn_indices[::step]
    return float(np.median(np.linalg.norm(fixed[rows[:, 1:]] - fixed[rows[:, :1]], axis=2)))


def _summary(projection: Projection) -> str:
    fitted = projection.fitted_on
    sample = f", fitted on {fitted:,} of {len(projection.coords):,} texts" if fitted else ""
    return f"{projection.coords.shape[1]} dimensions ({projection.method}{sample})"


STAGE = Stage(
    name="reduce",
    title="Reducing dimensions (UMAP)",
    version=VERSION,
    inputs=("embeddings",),
    output="projection",
    artifact=Projection,
    params=lambda config, runtime: config.reduce,
    run=lambda a, config, ctx: reduce(a["embeddings"], config.reduce, ctx),
    summary=_summary,
    mmap=True,  # with the stage off, the coordinates are the embeddings themselves (n x dim)
    bypass=Bypass(
        run=lambda a, config, ctx: passthrough(a["embeddings"], ctx),
        detail="reduce is off: clustering on full embeddings",
    ),
)
