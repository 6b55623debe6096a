"""What a stage declares about itself: the one place the runner, ``plan()``, the cache and the app
learn a stage's name, inputs, output, cache key, title and summary line.

Each stage module ends with ``STAGE = Stage(...)``; ``pipeline/stages/__init__.py`` lists them in
run order. Nothing outside a stage's own module branches on its name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..cache import Cache
    from ..config import PipelineConfig
    from ..context import Runtime, StageContext

# (artifacts by name, config, context) -> the stage's artifact
RunFn = Callable[[Mapping[str, Any], "PipelineConfig", "StageContext"], Any]
SOURCE = "table"  # the artifact every run starts from: the user's table


@dataclass(frozen=True)
class Bypass:
    """What an optional stage does while ``stages.<name>`` is false (see ``config.StagesParams``)."""

    run: RunFn  # makes the same artifact type without the stage's work
    detail: str  # what ``plan()`` says about the step
    key: str = "off"  # stands in for the params in the cache key


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline: a pure function over artifacts, and how the runner keys it."""

    name: str  # events, errors, the cache folder of its entries and ``stages.<name>`` all use it
    title: str  # what the app shows while it runs ("Embedding texts")
    version: int  # in the cache key: bump when the output changes (joblib does not see code edits)
    inputs: tuple[str, ...]  # artifacts it reads, in key order: "table" or earlier stages' outputs
    output: str  # the artifact it makes: a field of ``Result`` and a key of ``Result.keys``
    artifact: type  # the artifact's type (``types.py``)
    # (config, runtime) -> everything that changes the output, and nothing else: the cache key
    params: Callable[[PipelineConfig, Runtime], Any]
    run: RunFn
    summary: Callable[[Any], str]  # the finished event's line, after "computed: " / "from cache: "
    mmap: bool = False  # holds big arrays: the stored entry loads memory-mapped and read-only
    plan_detail: Callable[[PlanContext], str] | None = None  # said by ``plan()`` when it computes
    bypass: Bypass | None = None  # an optional stage: what runs while it is switched off

    def is_on(self, config: PipelineConfig) -> bool:
        return self.bypass is None or bool(getattr(config.stages, self.name))

    def key_params(self, config: PipelineConfig, runtime: Runtime) -> Any:
        return self.params(config, runtime) if self.is_on(config) else self.bypass.key

    def call(self, artifacts: Mapping[str, Any], config: PipelineConfig, ctx: StageContext) -> Any:
        run = self.run if self.is_on(config) else self.bypass.run
        return run(artifacts, config, ctx)

    def detail(self, plan: PlanContext) -> str:
        if not self.is_on(plan.config):
            return self.bypass.detail
        return self.plan_detail(plan) if self.plan_detail is not None else ""


@dataclass(frozen=True)
class PlanContext:
    """What a stage's ``plan_detail`` may look at: settings, the cache, and upstream artifacts
    already in the cache (nothing is computed)."""

    config: PipelineConfig
    runtime: Runtime
    cache: Cache
    keys: Mapping[str, str]  # artifact -> its chained key
    producers: Mapping[str, Stage]  # artifact -> the stage that makes it

    def cached(self, *artifacts: str) -> tuple[Any, ...] | None:
        """The cached values of ``artifacts``, or None when one is not cached; raises when an
        entry cannot be read."""
        stages = [self.producers[name] for name in artifacts]
        if not all(self.cache.contains(s.name, self.keys[s.output]) for s in stages):
            return None
        return tuple(self.cache.load(s.name, self.keys[s.output], mmap=s.mmap) for s in stages)
