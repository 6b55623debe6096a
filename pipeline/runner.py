"""The only caller of stages: order, cache keys, events and errors.

``stream()`` yields events while a worker thread runs the stages; ``run()`` consumes the
stream and returns the ``Result``; ``plan()`` says what would load and what would compute.
The on-disk cache is the checkpoint: a re-run resumes at the first stage (or embedding
chunk, or LLM cluster label) that is not cached. A stage result that says it is incomplete
(``complete`` false: some LLM calls failed) is returned but not cached, so the next run
computes that stage again and asks only for what is missing.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import Cache, cache_write_error, chain_key, default_cache_dir
from .config import LabelParams, LLMParams, PipelineConfig
from .context import Runtime, StageContext
from .embedders import embedder_identity
from .errors import Cancelled, PipelineError, StageError
from .events import Event, OnEvent
from .llm import PIECE_KIND, CostEstimate, estimate
from .result import Result, StageStat
from .stages import cluster as cluster_mod
from .stages import embed as embed_mod
from .stages import label as label_mod
from .stages import preprocess as preprocess_mod
from .stages import reduce as reduce_mod
from .types import Table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageSpec:
    """One step: which artifacts it reads, what it makes, and how its key is formed."""

    name: str
    version: int
    inputs: tuple[str, ...]
    output: str
    params: Callable[[PipelineConfig, Runtime], Any]  # everything that changes the output
    call: Callable[[dict[str, Any], PipelineConfig, StageContext], Any]


def _embed_params(config: PipelineConfig, runtime: Runtime) -> Any:
    given = runtime.embedder
    identity = given.identity if given is not None else embedder_identity(config.embed)
    return {"params": config.embed, "identity": identity}


def _label_params(config: PipelineConfig, runtime: Runtime) -> LabelParams:
    # the model's settings change nothing while labels come from keywords
    if config.label.method == "llm":
        return config.label
    return dataclasses.replace(config.label, llm=LLMParams())


def _reduce_spec(config: PipelineConfig) -> StageSpec:
    if config.stages.reduce:
        return StageSpec(
            "reduce",
            reduce_mod.VERSION,
            ("embeddings",),
            "projection",
            lambda c, r: c.reduce,
            lambda a, c, x: reduce_mod.reduce(a["embeddings"], c.reduce, x),
        )
    return StageSpec(
        "reduce",
        reduce_mod.VERSION,
        ("embeddings",),
        "projection",
        lambda c, r: "off",
        lambda a, c, x: reduce_mod.passthrough(a["embeddings"], x),
    )


def stages_for(config: PipelineConfig) -> list[StageSpec]:
    """The ordered stages of a run; optional ones replaced by their pass-through when off."""
    return [
        StageSpec(
            "preprocess",
            preprocess_mod.VERSION,
            ("table",),
            "corpus",
            lambda c, r: c.preprocess,
            lambda a, c, x: preprocess_mod.preprocess(a["table"], c.preprocess, x),
        ),
        StageSpec(
            "embed",
            embed_mod.VERSION,
            ("corpus",),
            "embeddings",
            _embed_params,
            lambda a, c, x: embed_mod.embed(a["corpus"], c.embed, x),
        ),
        _reduce_spec(config),
        StageSpec(
            "cluster",
            cluster_mod.VERSION,
            ("projection", "corpus", "embeddings"),
            "clustering",
            lambda c, r: c.cluster,
            lambda a, c, x: cluster_mod.cluster(
                a["projection"], c.cluster, x, weights=a["corpus"].counts, vectors=a["embeddings"].vectors
            ),
        ),
        StageSpec(
            "label",
            label_mod.VERSION,
            ("corpus", "embeddings", "clustering"),
            "labels",
            _label_params,
            lambda a, c, x: label_mod.label(a["corpus"], a["embeddings"], a["clustering"], c.label, x),
        ),
    ]


def stage_keys(table: Table, config: PipelineConfig, runtime: Runtime) -> dict[str, str]:
    """Chained keys: stage name + VERSION + params + the keys of its inputs. No array is hashed."""
    keys = {"table": chain_key("table", table.fingerprint)}
    for spec in stages_for(config):
        upstream = [keys[name] for name in spec.inputs]
        keys[spec.output] = chain_key(spec.name, spec.version, spec.params(config, runtime), upstream)
    return keys


def _resolve_cache(cache_dir: str | Path | Cache | None) -> Cache:
    if isinstance(cache_dir, Cache):
        return cache_dir
    return Cache(default_cache_dir() if cache_dir is None else cache_dir)


class RunStream:
    """Iterate for events; afterwards ``result`` holds the Result (or the error is raised)."""

    def __init__(self, table: Table, config: PipelineConfig, cache: Cache, runtime: Runtime):
        self.table, self.config, self.cache, self.runtime = table, config, cache, runtime
        self._result: Result | None = None

    @property
    def result(self) -> Result:
        if self._result is None:
            raise RuntimeError("the run has not finished; iterate over the stream first")
        return self._result

    def __iter__(self) -> Iterator[Event]:
        events: queue.Queue = queue.Queue()
        cancel = threading.Event()
        done = object()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = _execute(
                    self.table, self.config, self.cache, self.runtime, events.put, cancel
                )
            except BaseException as exc:  # handed to the consumer thread below
                outcome["error"] = exc
            finally:
                events.put(done)

        worker = threading.Thread(target=work, name="clusterlab-run", daemon=True)
        worker.start()
        current: Event | None = None
        started: dict[str, float] = {}
        try:
            while True:
                try:
                    item = events.get(timeout=self.runtime.heartbeat_s)
                except queue.Empty:
                    if current is not None and current.kind in ("started", "progress", "warning"):
                        # a stage without news still shows it is alive, with fresh elapsed time
                        yield Event(
                            current.stage,
                            "progress",
                            current.fraction,
                            time.monotonic() - started[current.stage],
                            False,
                            _still(current.message),
                        )
                    continue
                if item is done:
                    break
                if item.kind == "started":
                    started[item.stage] = time.monotonic() - item.elapsed_s
                if item.kind != "warning":
                    current = item
                yield item
        finally:
            cancel.set()
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        self._result = outcome["result"]


def _still(message: str) -> str:
    message = message.removeprefix("still working: ")
    return f"still working: {message}" if message else "still working"


def _execute(
    table: Table,
    config: PipelineConfig,
    cache: Cache,
    runtime: Runtime,
    emit: Callable[[Event], None],
    cancel: threading.Event,
) -> Result:
    keys = stage_keys(table, config, runtime)
    artifacts: dict[str, Any] = {"table": table}
    stats: list[StageStat] = []
    warnings: list[str] = list(table.notes)
    for spec in stages_for(config):
        if cancel.is_set():
            raise Cancelled(spec.name)
        key = keys[spec.output]
        ctx = StageContext(stage=spec.name, runtime=runtime, cache=cache, emit=emit, cancel=cancel)
        cached = cache.contains(spec.name, key)
        emit(Event(spec.name, "started", 0.0, 0.0, cached, "loading from cache" if cached else "computing"))
        if cache.notice and not stats:  # said once, by the first stage (a read-only cache)
            ctx.warn(cache.notice)
        try:
            value, hit = cache.get_or_compute(
                spec.name,
                key,
                lambda spec=spec, ctx=ctx: spec.call(artifacts, config, ctx),
                on_corrupt=ctx.warn,
                keep=lambda value: getattr(value, "complete", True),
            )
        except Cancelled:
            raise
        except PipelineError as exc:
            emit(Event(spec.name, "failed", ctx.fraction, ctx.elapsed, False, exc.user_message()))
            raise
        except Exception as exc:
            log.exception("stage %s failed unexpectedly", spec.name)
            error = cache_write_error(spec.name, exc, cache.location) or StageError(
                spec.name,
                f"unexpected {type(exc).__name__}: {str(exc)[:300]}",
                hint=f"the full traceback is in the log; stages before {spec.name} are cached, so "
                "running the same command again resumes here",
            )
            emit(Event(spec.name, "failed", ctx.fraction, ctx.elapsed, False, error.user_message()))
            raise error from exc
        artifacts[spec.output] = value
        warnings.extend(ctx.warnings)
        stats.append(StageStat(spec.name, ctx.elapsed, hit, key))
        emit(Event(spec.name, "finished", 1.0, ctx.elapsed, hit, _summary(spec.name, value, hit)))
    return Result(
        config=config,
        corpus=artifacts["corpus"],
        embeddings=artifacts["embeddings"],
        projection=artifacts["projection"],
        clustering=artifacts["clustering"],
        labels=artifacts["labels"],
        stages=tuple(stats),
        warnings=tuple(warnings),
        keys=keys,
    )


def _summary(stage: str, value: Any, hit: bool) -> str:
    source = "from cache" if hit else "computed"
    if stage == "preprocess":
        return f"{source}: {value.n_rows:,} rows, {value.n_texts:,} distinct texts"
    if stage == "embed":
        return f"{source}: {value.vectors.shape[0]:,} vectors of {value.dim} dimensions"
    if stage == "reduce":
        fitted = f", fitted on {value.fitted_on:,} of {len(value.coords):,} texts" if value.fitted_on else ""
        return f"{source}: {value.coords.shape[1]} dimensions ({value.method}{fitted})"
    if stage == "cluster":
        sample = value.resolved.get("fit_sample", 0)
        fitted = f" (HDBSCAN fitted on {sample:,} of {len(value.labels):,} texts)" if sample else ""
        return f"{source}: {value.n_clusters} clusters{fitted}"
    if stage == "label":
        text = f"{source}: {len(value.clusters)} groups labelled"
        if value.method == "llm":
            by_model = int((value.clusters["source"] == "llm").sum())
            text += f", {by_model} by {value.llm.get('model', 'the model')}"
            failed = sum(f.kind == "failed" for f in value.fallbacks)
            text += f", {failed} kept keyword labels after failed calls (not cached)" if failed else ""
        return text
    return source


def stream(
    table: Table,
    config: PipelineConfig,
    *,
    cache_dir: str | Path | Cache | None = None,
    runtime: Runtime | None = None,
) -> RunStream:
    """Events of a run as they happen; the result is on ``.result`` once iteration ends."""
    return RunStream(table, config, _resolve_cache(cache_dir), runtime or Runtime())


def run(
    table: Table,
    config: PipelineConfig,
    *,
    on_event: OnEvent | None = None,
    cache_dir: str | Path | Cache | None = None,
    runtime: Runtime | None = None,
) -> Result:
    """Run every stage (loading what is cached) and return the result."""
    events = stream(table, config, cache_dir=cache_dir, runtime=runtime)
    for event in events:
        if on_event is not None:
            on_event(event)
    return events.result


@dataclass(frozen=True)
class PlanStep:
    stage: str
    action: str  # "load" or "compute"
    detail: str = ""


def plan(
    table: Table,
    config: PipelineConfig,
    *,
    cache_dir: str | Path | Cache | None = None,
    runtime: Runtime | None = None,
) -> list[PlanStep]:
    """Which stages would load from cache and which would compute, without running any."""
    cache = _resolve_cache(cache_dir)
    runtime = runtime or Runtime()
    keys = stage_keys(table, config, runtime)
    steps = []
    for spec in stages_for(config):
        if cache.contains(spec.name, keys[spec.output]):
            steps.append(PlanStep(spec.name, "load"))
            continue
        detail = ""
        if spec.name == "embed":
            detail = _embed_chunks_detail(table, config, cache, runtime, keys)
        elif spec.name == "reduce" and not config.stages.reduce:
            detail = "reduce is off: clustering on full embeddings"
        elif spec.name == "label" and config.label.method == "llm":
            detail = _llm_detail(config, cache, keys)
        steps.append(PlanStep(spec.name, "compute", detail))
    return steps


def _embed_chunks_detail(table, config, cache, runtime, keys) -> str:
    if not cache.contains("preprocess", keys["corpus"]):
        return ""
    try:
        corpus = cache.load("preprocess", keys["corpus"])
    except Exception:
        return "cache entry unreadable; it will be recomputed"
    identity = _embed_params(config, runtime)["identity"]
    chunks = embed_mod.chunk_plan(corpus.texts, max(1, runtime.chunk_size))
    have = sum(
        cache.contains("embed_chunk", embed_mod.chunk_key(identity, [str(t) for t in corpus.texts[i]]))
        for i in chunks
    )
    return f"{have} of {len(chunks)} chunks cached"


def _llm_detail(config: PipelineConfig, cache: Cache, keys: dict[str, str]) -> str:
    where = f"labels from {config.label.llm.model} at {config.label.llm.base_url}"
    needed = (("preprocess", "corpus"), ("embed", "embeddings"), ("cluster", "clustering"))
    if not all(cache.contains(stage, keys[name]) for stage, name in needed):
        return where
    try:
        corpus, embeddings, clustering = (cache.load(stage, keys[name]) for stage, name in needed)
    except Exception:
        return f"{where}; cache entry unreadable, it will be recomputed"
    requests, capped = label_mod.plan_requests(corpus, embeddings, clustering, config.label)
    have = sum(cache.contains(PIECE_KIND, r.key) for r in requests)
    return f"{where}: {have} of {len(requests)} cluster labels cached, {len(requests) - have} API calls"


def estimate_llm_labels(
    result: Result,
    config: PipelineConfig | None = None,
    *,
    cache_dir: str | Path | Cache | None = None,
) -> CostEstimate:
    """How many API calls (and roughly how many tokens) LLM labels for ``result``'s clusters
    would take with ``config.label`` (default: the result's own), counting cached answers as
    free and honouring ``label.llm.max_clusters``. Nothing is called; noise is never sent."""
    params = (config or result.config).label
    requests, capped = label_mod.plan_requests(result.corpus, result.embeddings, result.clustering, params)
    return estimate(requests, len(capped), _resolve_cache(cache_dir))
