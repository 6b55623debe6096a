"""reduce: UMAP to a few dimensions for clustering, and a separate 2-D layout for the map."""

from __future__ import annotations

import warnings

import numpy as np

from ..config import ReduceParams
from ..context import StageContext, detached
from ..types import Embeddings, Projection

VERSION = 1
MIN_UMAP_POINTS = 10  # below this UMAP's graph is meaningless: a PCA projection is used
LAYOUT_MIN_DIST = 0.1
EPOCHS_LARGE = 200  # UMAP's own choice past 10,000 points; used from 2,000 (500 below that)
EPOCHS_FROM = 2_000
LAYOUT_EPOCHS_LARGE = 100  # the map is for the eye: half the epochs, half the time
EXACT_KNN_MAX = 50_000  # up to here exact neighbours (BLAS) beat NNDescent and its 30 s JIT


def exact_knn(vectors: np.ndarray, k: int, metric: str, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest points of every point (itself first), by brute force in blocks."""
    # float64 for euclidean: the |a|^2 + |b|^2 - 2ab form loses digits in float32
    x = np.asarray(vectors, dtype=np.float32 if metric == "cosine" else np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms == 0, 1, norms)
    sq = (x * x).sum(axis=1)
    n = len(x)
    indices = np.empty((n, k), dtype=np.int32)
    distances = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        sims = x[rows] @ x.T
        if metric == "cosine":
            dist = 1.0 - sims
        else:
            dist = np.sqrt(np.maximum(sq[rows, None] + sq[None, :] - 2 * sims, 0))
        own = np.arange(rows.start, rows.stop)
        dist[own - start, own] = -1.0  # each point is its own nearest neighbour
        part = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(dist, part, axis=1).argsort(axis=1, kind="stable")
        idx = np.take_along_axis(part, order, axis=1)
        indices[rows] = idx
        distances[rows] = np.maximum(np.take_along_axis(dist, idx, axis=1), 0)
    return indices, distances


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


def reduce(embeddings: Embeddings, params: ReduceParams, ctx: StageContext | None = None) -> Projection:
    """Seeded UMAP (one shared neighbour graph for both outputs); PCA for tiny corpora."""
    ctx = ctx or detached("reduce")
    vectors = embeddings.vectors
    n = len(vectors)
    if n < MIN_UMAP_POINTS:
        ctx.warn(f"only {n} distinct texts: UMAP needs {MIN_UMAP_POINTS}; using PCA instead")
        return Projection(coords=_pca(vectors, params.n_components), layout=_pca(vectors, 2), method="pca")
    n_neighbors = min(params.n_neighbors, n - 1)
    if n_neighbors < params.n_neighbors:
        ctx.warn(
            f"reduce.n_neighbors={params.n_neighbors} is more than the {n} distinct texts allow; "
            f"using {n_neighbors}"
        )
    ctx.progress(0.02, "loading UMAP (first use in a process compiles it)")
    import umap

    _cache_umap_compilation()
    ctx.progress(0.05, f"finding {n_neighbors} nearest neighbours of {n:,} points")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if n <= EXACT_KNN_MAX:
            knn: tuple = exact_knn(vectors, n_neighbors, params.metric)
        else:
            from umap.umap_ import nearest_neighbors

            knn = nearest_neighbors(
                vectors,
                n_neighbors,
                params.metric,
                {},
                False,
                np.random.RandomState(params.seed),
                n_jobs=1,
            )
        ctx.progress(0.35, f"UMAP to {params.n_components} dimensions for clustering")

        def fit(n_components: int, min_dist: float, epochs: int) -> np.ndarray:
            model = umap.UMAP(
                n_components=n_components,
                n_neighbors=n_neighbors,
                min_dist=min_dist,
                metric=params.metric,
                random_state=params.seed,
                n_jobs=1,
                precomputed_knn=knn,
                low_memory=True,
                n_epochs=epochs if n >= EPOCHS_FROM else None,
            )
            return np.asarray(model.fit_transform(vectors), dtype=np.float32)

        coords = fit(params.n_components, params.min_dist, EPOCHS_LARGE)
        ctx.progress(0.7, "UMAP to 2 dimensions for the map")
        layout = fit(2, max(params.min_dist, LAYOUT_MIN_DIST), LAYOUT_EPOCHS_LARGE)
    return Projection(coords=coords, layout=layout, method="umap", n_neighbors=n_neighbors)
