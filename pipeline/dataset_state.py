"""What the app keeps for one dataset between visits: its text column(s), the last settings and
the edit log with its undo steps. One typed, immutable object: a page loads it once per rerun,
changes make a new one, and ``Workspace.save_dataset_state`` writes it atomically.

``state.json`` written before this class existed (``text_column`` as one string, ``edits`` as
dicts, ``edit_steps``) reads the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .edits import Edit


@dataclass(frozen=True)
class DatasetState:
    text_columns: tuple[str, ...] = ()  # the first is the one clustered; more for later features
    settings: Mapping[str, Any] = field(default_factory=dict)  # {"section.key": value} + app switches
    edits: tuple[Edit, ...] = ()
    steps: tuple[int, ...] = ()  # how many edits each click added, oldest first (sum = len(edits))

    def __post_init__(self):
        object.__setattr__(self, "settings", dict(self.settings))
        if sum(self.steps) != len(self.edits) or any(s <= 0 for s in self.steps):
            object.__setattr__(self, "steps", (1,) * len(self.edits))  # an older log: an edit a step

    @property
    def text_column(self) -> str | None:
        return self.text_columns[0] if self.text_columns else None

    def with_text_column(self, column: str) -> DatasetState:
        rest = tuple(c for c in self.text_columns if c != column)
        return dataclasses.replace(self, text_columns=(column, *rest))

    def with_settings(self, settings: Mapping[str, Any]) -> DatasetState:
        return dataclasses.replace(self, settings=dict(settings))

    def with_edits(self, new: Iterable[Edit]) -> DatasetState:
        """The log with the edits of one click appended, as one step."""
        new = tuple(new)
        if not new:
            return self
        return dataclasses.replace(self, edits=(*self.edits, *new), steps=(*self.steps, len(new)))

    def undo(self) -> DatasetState:
        """The log without its last step (one click's edits)."""
        if not self.steps:
            return self
        keep = len(self.edits) - self.steps[-1]
        return dataclasses.replace(self, edits=self.edits[:keep], steps=self.steps[:-1])

    def cleared(self) -> DatasetState:
        return dataclasses.replace(self, edits=(), steps=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "text_columns": list(self.text_columns),
            "text_column": self.text_column,  # read by older versions
            "settings": dict(self.settings),
            "edits": [e.to_dict() for e in self.edits],
            "edit_steps": list(self.steps),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetState:
        """From ``state.json``; anything unreadable in it is dropped, never fatal."""
        columns = data.get("text_columns")
        if not isinstance(columns, list):
            single = data.get("text_column")
            columns = [single] if isinstance(single, str) and single else []
        settings = data.get("settings")
        edits = []
        for item in data.get("edits") or []:
            try:
                edits.append(Edit.from_dict(item))
            except (KeyError, TypeError, ValueError):
                continue  # a damaged entry: the rest of the log still applies
        steps = data.get("edit_steps") or []
        return cls(
            text_columns=tuple(str(c) for c in columns if isinstance(c, str) and c),
            settings=settings if isinstance(settings, dict) else {},
            edits=tuple(edits),
            steps=tuple(s for s in steps if isinstance(s, int)),  # inconsistent: an edit a step
        )
