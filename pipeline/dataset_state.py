"""What the app keeps for one dataset between visits: its text column(s), the last settings and
the edit log with its undo steps and what can be redone. One typed, immutable object: a page
loads it once per rerun, changes make a new one, and ``Workspace.save_dataset_state`` writes it
atomically.

A step is one click's edits (a tree level is several merges in one step). Any step can be
removed on its own (the others stay, in order); undo removes the last one. What undo, a removal
or clearing the log took out can be redone, the latest first, and goes back where it was, so the
edits apply in the order they were made. A new edit ends redo, as in any editor.

``state.json`` written before this class existed (``text_column`` as one string, ``edits`` as
dicts, ``edit_steps``, no ``redo``) reads the same. Before several text columns could be joined,
``text_columns`` listed the columns chosen before, the first one clustered: such a file (without
``text_columns_joined``) reads as its first column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .edits import Edit


@dataclass(frozen=True)
class Undone:
    """What one click took out of the log (undo, removing a step, clearing it): each step's
    position in the log's steps at the time and its edits, first position first."""

    steps: tuple[tuple[int, tuple[Edit, ...]], ...]

    @property
    def edits(self) -> tuple[Edit, ...]:
        return tuple(edit for _, step in self.steps for edit in step)

    def to_dict(self) -> dict[str, Any]:
        return {"steps": [{"at": at, "edits": [e.to_dict() for e in step]} for at, step in self.steps]}

    @classmethod
    def from_dict(cls, data: Any) -> Undone | None:
        """None when nothing in ``data`` can be read back (a damaged entry)."""
        steps = data.get("steps") if isinstance(data, dict) else None
        out = []
        for item in steps if isinstance(steps, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("at"), int):
                continue
            step = tuple(_edits(item.get("edits")))
            if step:
                out.append((item["at"], step))
        return cls(tuple(out)) if out else None


@dataclass(frozen=True)
class DatasetState:
    text_columns: tuple[str, ...] = ()  # the columns clustered: all of them, joined in this order
    settings: Mapping[str, Any] = field(default_factory=dict)  # {"section.key": value} + app switches
    edits: tuple[Edit, ...] = ()
    steps: tuple[int, ...] = ()  # how many edits each click added, oldest first (sum = len(edits))
    undone: tuple[Undone, ...] = ()  # what redo can put back, the latest last
    # the codebook in use: {"source": file name or "", "categories": Codebook.to_records(),
    # "threshold": 0 = automatic}; empty when there is none
    codebook: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "settings", dict(self.settings))
        object.__setattr__(self, "codebook", dict(self.codebook))
        if sum(self.steps) != len(self.edits) or any(s <= 0 for s in self.steps):
            object.__setattr__(self, "steps", (1,) * len(self.edits))  # an older log: an edit a step

    @property
    def text_column(self) -> str | tuple[str, ...] | None:
        """The ``preprocess.text_column`` value: a name, several names, or None before a choice."""
        if not self.text_columns:
            return None
        return self.text_columns[0] if len(self.text_columns) == 1 else self.text_columns

    def with_text_column(self, column: str | Sequence[str]) -> DatasetState:
        """The state with this column, or these columns joined in this order, as the text."""
        columns = (column,) if isinstance(column, str) else tuple(column)
        return dataclasses.replace(self, text_columns=tuple(dict.fromkeys(c for c in columns if c)))

    def with_settings(self, settings: Mapping[str, Any]) -> DatasetState:
        return dataclasses.replace(self, settings=dict(settings))

    def steps_with_edits(self) -> list[tuple[int, tuple[Edit, ...]]]:
        """(step index, that step's edits) per step, oldest first: what the edit log lists, each
        with its own remove button (``remove_step(index)``)."""
        out, start = [], 0
        for index, size in enumerate(self.steps):
            out.append((index, self.edits[start : start + size]))
            start += size
        return out

    def with_edits(self, new: Iterable[Edit]) -> DatasetState:
        """The log with the edits of one click appended, as one step; nothing is left to redo."""
        new = tuple(new)
        if not new:
            return self
        return dataclasses.replace(self, edits=(*self.edits, *new), steps=(*self.steps, len(new)), undone=())

    def remove_step(self, index: int) -> DatasetState:
        """The log without step ``index`` (one click's edits), the other steps kept in order; redo
        puts it back. An index that is no step changes nothing."""
        if not 0 <= index < len(self.steps):
            return self
        steps = self.steps_with_edits()
        taken = Undone(((index, steps[index][1]),))
        kept = [step for i, step in steps if i != index]
        return self._with_steps(kept, undone=(*self.undone, taken))

    def undo(self) -> DatasetState:
        """The log without its last step (one click's edits); redo puts it back."""
        return self.remove_step(len(self.steps) - 1)

    def cleared(self) -> DatasetState:
        """An empty log; one redo puts the whole log back."""
        if not self.steps:
            return self
        taken = Undone(tuple(self.steps_with_edits()))
        return self._with_steps([], undone=(*self.undone, taken))

    @property
    def can_redo(self) -> bool:
        return bool(self.undone)

    @property
    def redoable(self) -> tuple[Edit, ...]:
        """The edits ``redo`` puts back (empty when there is nothing to redo)."""
        return self.undone[-1].edits if self.undone else ()

    def redo(self) -> DatasetState:
        """The log with what was undone last (by undo, a removal or clearing) back where it was."""
        if not self.undone:
            return self
        steps = [step for _, step in self.steps_with_edits()]
        for at, step in self.undone[-1].steps:  # first position first: each lands where it was
            steps.insert(min(at, len(steps)), step)
        return self._with_steps(steps, undone=self.undone[:-1])

    def _with_steps(self, steps: list[tuple[Edit, ...]], undone: tuple[Undone, ...]) -> DatasetState:
        edits = tuple(edit for step in steps for edit in step)
        return dataclasses.replace(self, edits=edits, steps=tuple(len(s) for s in steps), undone=undone)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text_columns": list(self.text_columns),
            "text_columns_joined": True,  # all of them are the text (before: the first only)
            "text_column": self.text_columns[0] if self.text_columns else None,  # read by older versions
            "settings": dict(self.settings),
            "edits": [e.to_dict() for e in self.edits],
            "edit_steps": list(self.steps),
            "redo": [u.to_dict() for u in self.undone],
            "codebook": dict(self.codebook),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetState:
        """From ``state.json``; anything unreadable in it is dropped, never fatal."""
        columns = data.get("text_columns")
        if not isinstance(columns, list):
            single = data.get("text_column")
            columns = [single] if isinstance(single, str) and single else []
        elif data.get("text_columns_joined") is not True:  # older: the columns chosen, the first clustered
            columns = [c for c in columns if isinstance(c, str) and c][:1]
        settings = data.get("settings")
        steps = data.get("edit_steps") or []
        redo = data.get("redo")
        undone = [Undone.from_dict(item) for item in (redo if isinstance(redo, list) else [])]
        return cls(
            text_columns=tuple(dict.fromkeys(str(c) for c in columns if isinstance(c, str) and c)),
            settings=settings if isinstance(settings, dict) else {},
            edits=tuple(_edits(data.get("edits"))),
            steps=tuple(s for s in steps if isinstance(s, int)),  # inconsistent: an edit a step
            undone=tuple(u for u in undone if u is not None),
            codebook=codebook if isinstance(codebook := data.get("codebook"), dict) else {},
        )


def _edits(items: Any) -> list[Edit]:
    """The readable edits of a list of dicts; a damaged entry is skipped, the rest still apply."""
    edits = []
    for item in items if isinstance(items, list) else []:
        try:
            edits.append(Edit.from_dict(item))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return edits
