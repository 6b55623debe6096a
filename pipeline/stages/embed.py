"""embed: distinct texts -> float32 vectors, in chunks that are cached one by one."""

from __future__ import annotations

import hashlib

import numpy as np

from ..cache import chain_key
from ..config import EmbedParams
from ..context import StageContext, detached
from ..embedders import Embedder, embedder_identity, load_embedder
from ..errors import StageError
from ..types import Corpus, Embeddings

VERSION = 1


def chunk_plan(texts: np.ndarray, chunk_size: int) -> list[np.ndarray]:
    """Indices of each chunk. Texts are grouped by length so batches pad little."""
    order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
    return [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]


def chunk_key(identity: str, texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return chain_key("embed_chunk", VERSION, identity, digest.hexdigest())


def embed(corpus: Corpus, params: EmbedParams, ctx: StageContext | None = None) -> Embeddings:
    """Embed every distinct text. Weights load only if some chunk is not cached yet."""
    ctx = ctx or detached("embed")
    given: Embedder | None = ctx.runtime.embedder
    identity = given.identity if given is not None else embedder_identity(params)
    chunks = chunk_plan(corpus.texts, max(1, ctx.runtime.chunk_size))
    total = corpus.n_texts
    vectors: np.ndarray | None = None
    done = loaded = 0
    for number, index in enumerate(chunks, start=1):
        texts = [str(t) for t in corpus.texts[index]]

        def compute(texts: list[str] = texts) -> np.ndarray:
            embedder = given or load_embedder(
                params, ctx.runtime.device, ctx.runtime.batch_size, ctx.cache.location
            )
            out = np.asarray(embedder.encode(texts), dtype=np.float32)
            if out.ndim != 2 or out.shape[0] != len(texts):
                raise StageError(
                    "embed",
                    f"the model returned an array of shape {out.shape} for {len(texts)} texts; "
                    "expected one vector per text",
                    hint="check that embed.model is a sentence-embedding model",
                )
            return out

        block, hit = ctx.piece("embed_chunk", chunk_key(identity, texts), compute)
        if vectors is None:
            vectors = np.empty((total, block.shape[1]), dtype=np.float32)
        vectors[index] = block
        done += len(texts)
        loaded += hit
        ctx.progress(
            done / total,
            f"chunk {number}/{len(chunks)}: {done:,} of {total:,} texts"
            + (" (chunk from cache)" if hit else ""),
        )
    assert vectors is not None  # preprocess guarantees at least one text
    if not np.isfinite(vectors).all():
        raise StageError(
            "embed",
            "the model produced non-finite values (NaN or inf)",
            hint="try another embed.model; if it persists, report it with the manifest",
        )
    return Embeddings(vectors=vectors, model=identity)
