"""The stages, in run order: one module per stage, each exposing one pure function named for its
verb and ending with its declaration, ``STAGE = Stage(...)`` (see ``base.py``).

``STAGES`` is the registry the runner, ``plan()``, the cache, the result and the app read; a new
stage is a module here plus its line below (docs/architecture.md, "Add a stage").
"""

from __future__ import annotations

from . import cluster, embed, label, preprocess, reduce
from .base import SOURCE, Bypass, PlanContext, Stage

STAGES: tuple[Stage, ...] = (
    preprocess.STAGE,
    embed.STAGE,
    reduce.STAGE,
    cluster.STAGE,
    label.STAGE,
)


def names() -> tuple[str, ...]:
    """The stage names in run order."""
    return tuple(stage.name for stage in STAGES)


def producers() -> dict[str, Stage]:
    """Artifact name -> the stage that makes it."""
    return {stage.output: stage for stage in STAGES}


def check_order(stages: tuple[Stage, ...]) -> None:
    """Each stage reads only the table and earlier stages' outputs; names and outputs are unique."""
    made, seen = {SOURCE}, set()
    for stage in stages:
        missing = [name for name in stage.inputs if name not in made]
        if missing or stage.output in made or stage.name in seen:
            raise RuntimeError(
                f"stage {stage.name!r} is out of order: it reads {missing or list(stage.inputs)} "
                f"(made before it: {sorted(made)}) and must make a new artifact under a new name"
            )
        made.add(stage.output)
        seen.add(stage.name)


check_order(STAGES)

__all__ = ["SOURCE", "STAGES", "Bypass", "PlanContext", "Stage", "check_order", "names", "producers"]
