"""The only caller of stages: order, cache keys, events and errors.

``stream()`` yields events while a worker thread runs the stages; ``run()`` consumes the
stream and returns the ``Result``; ``plan()`` says what would load and what would compute.
The on-disk cache is the checkpoint: a re-run resumes at the first stage (or embedding
chunk, or LLM cluster label) that is not cached. A stage result that says it is incomplete
(``complete`` false: some LLM calls failed) is returned but not cached, so the next run
computes that stage again and asks only for what is missing.

Beside each stage's cached output the runner keeps how long computing it took (and its named
steps, such as loading the model), so a run served from the cache reports the seconds of the run
that computed each stage, and its own reload time apart (``StageStat``, the manifest).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import Cache, cache_write_error, chain_key, default_cache_dir
from .config import PipelineConfig
from .context import Runtime, StageContext
from .errors import Cancelled, PipelineError, StageError
from .events import Event, OnEvent
from .llm import CostEstimate, estimate
from .result import Result, StageStat
from .stages import SOURCE, STAGES, PlanContext, producers
from .stages import label as label_stage
from .types import Table

log = logging.getLogger(__name__)
TIMINGS = "stage_timings"  # the cache's kind for how long computing each stored stage took


def stage_keys(table: Table, config: PipelineConfig, runtime: Runtime) -> dict[str, str]:
    """Chained keys by artifact: stage name + VERSION + params + the keys of its inputs. No array
    is hashed."""
    keys = {SOURCE: chain_key(SOURCE, table.fingerprint)}
    for stage in STAGES:
        upstream = [keys[name] for name in stage.inputs]
        keys[stage.output] = chain_key(stage.name, stage.version, stage.key_params(config, runtime), upstream)
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
    artifacts: dict[str, Any] = {SOURCE: table}
    stats: list[StageStat] = []
    warnings: list[str] = list(table.notes)
    for stage in STAGES:
        if cancel.is_set():
            raise Cancelled(stage.name)
        key = keys[stage.output]
        ctx = StageContext(stage=stage.name, runtime=runtime, cache=cache, emit=emit, cancel=cancel)
        cached = cache.contains(stage.name, key)
        emit(Event(stage.name, "started", 0.0, 0.0, cached, "loading from cache" if cached else "computing"))
        if cache.notice and not stats:  # said once, by the first stage (a read-only cache)
            ctx.warn(cache.notice)
        try:
            value, hit = cache.get_or_compute(
                stage.name,
                key,
                lambda stage=stage, ctx=ctx: stage.call(artifacts, config, ctx),
                on_corrupt=ctx.warn,
                keep=lambda value: getattr(value, "complete", True),
                mmap=stage.mmap,
                remember=True,  # a rerun in the app asks again: read once per process
            )
        except Cancelled:
            raise
        except PipelineError as exc:
            emit(Event(stage.name, "failed", ctx.fraction, ctx.elapsed, False, exc.user_message()))
            raise
        except Exception as exc:
            log.exception("stage %s failed unexpectedly", stage.name)
            error = cache_write_error(stage.name, exc, cache.location) or StageError(
                stage.name,
                f"unexpected {type(exc).__name__}: {str(exc)[:300]}",
                hint=f"the full traceback is in the log; stages before {stage.name} are cached, so "
                "running the same command again resumes here",
            )
            emit(Event(stage.name, "failed", ctx.fraction, ctx.elapsed, False, error.user_message()))
            raise error from exc
        artifacts[stage.output] = value
        warnings.extend(ctx.warnings)
        stat = _stat(stage.name, key, ctx, hit, cache)
        stats.append(stat)
        source = "from cache" if hit else "computed"
        steps = "".join(f"; {name} took {seconds:.1f} s" for name, seconds in stat.steps if not hit)
        emit(Event(stage.name, "finished", 1.0, ctx.elapsed, hit, f"{source}: {stage.summary(value)}{steps}"))
    return Result(
        config=config,
        **{stage.output: artifacts[stage.output] for stage in STAGES},
        stages=tuple(stats),
        warnings=tuple(warnings),
        keys=keys,
    )


def _stat(stage: str, key: str, ctx: StageContext, hit: bool, cache: Cache) -> StageStat:
    """The stage's timings: this run's when it computed (kept beside the stored output), else
    those of the run that computed what it loaded, with the reload's own seconds apart."""
    if not hit:
        stat = StageStat(stage, ctx.elapsed, False, key, ctx.elapsed, tuple(ctx.steps.items()))
        if cache.writable and cache.contains(stage, key):  # stored: not an incomplete result
            try:
                cache.put(TIMINGS, key, {"seconds": stat.seconds, "steps": dict(stat.steps)})
            except Exception:  # timings are worth less than the run
                log.warning("cache: could not keep the timings of %s", stage, exc_info=True)
        return stat
    timings = cache.lookup(TIMINGS, key)
    try:
        seconds = float(timings["seconds"])
        steps = tuple((str(name), float(s)) for name, s in dict(timings.get("steps", {})).items())
    except (KeyError, TypeError, ValueError, AttributeError):  # none (kept before timings were)
        return StageStat(stage, ctx.elapsed, True, key)
    return StageStat(stage, ctx.elapsed, True, key, seconds, steps)


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
    context = PlanContext(config, runtime, cache, keys, producers())
    steps = []
    for stage in STAGES:
        if cache.contains(stage.name, keys[stage.output]):
            steps.append(PlanStep(stage.name, "load"))
        else:
            steps.append(PlanStep(stage.name, "compute", stage.detail(context)))
    return steps


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
    labels = result.labels
    summary = (
        labels.clusters
        if labels is not None
        and labels.method == "keywords"
        and label_stage.same_keywords(result.config.label, params)
        else None
    )
    requests, capped = label_stage.plan_requests(
        result.corpus, result.embeddings, result.clustering, params, summary
    )
    return estimate(requests, len(capped), _resolve_cache(cache_dir))
