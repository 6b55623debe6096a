"""The open dataset's state (text column, settings, edit log) as a page reads and changes it.

A page loads it once at the top of its rerun (``state = ui.dataset_state(ws, dataset_id)``),
passes it to what needs it, and saves a new ``DatasetState`` after a change; the schema and the
atomic write live in the library (``pipeline/dataset_state.py``, ``Workspace``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

import pipeline
from pipeline.dataset_state import DatasetState
from pipeline.edits import Edited, edited_from_result
from pipeline.store import Workspace

T = TypeVar("T")


def dataset_state(ws: Workspace, dataset_id: str) -> DatasetState:
    """The dataset's state as saved (an empty one before anything was saved): one read."""
    return ws.dataset_state(dataset_id)


def save_state(ws: Workspace, dataset_id: str, state: DatasetState) -> DatasetState:
    """Save ``state`` atomically and return it, the state the rest of the rerun uses."""
    ws.save_dataset_state(dataset_id, state)
    return state


def save_settings(
    ws: Workspace,
    dataset_id: str,
    state: DatasetState,
    column: str | tuple[str, ...],
    values: dict[str, Any],
) -> DatasetState:
    """``state`` with this text column (or these, joined) and these settings, saved only when that
    changes it."""
    changed = state.with_text_column(column).with_settings(values)
    return save_state(ws, dataset_id, changed) if changed != state else state


def text_column(ws: Workspace, dataset_id: str, state: DatasetState) -> str | tuple[str, ...] | None:
    """What to cluster, as ``preprocess.text_column`` takes it: the column chosen (a tuple when
    several are joined), else the one the upload suggested."""
    return state.text_column or ws.info(dataset_id).suggested_column


def edited(result: pipeline.Result, state: DatasetState) -> Edited:
    """The result with the dataset's edit log applied."""
    return edited_from_result(result, list(state.edits))


MEMO_KEPT = 2  # values kept per name: the current one and the one before


def memo(name: str, key: Any, build: Callable[[], T], kept: int = MEMO_KEPT) -> T:
    """``build()`` once per ``key`` in this browser session: the page's figures and tables are
    computed once per result and edit state, not on every rerun. The last ``kept`` values are kept
    per ``name``, so going back (an undo after a merge, a redo, the cluster read before, a slider
    step back) finds what it showed a moment ago instead of building it again."""
    held = st.session_state.setdefault("memo", {}).setdefault(name, [])  # [(key, value)], oldest first
    for i, (stored, value) in enumerate(held):
        if stored == key:  # keys are compared, never hashed (some hold lists and dicts)
            held.append(held.pop(i))
            return value
    value = build()
    held.append((key, value))
    del held[:-kept]
    return value


def version(result: pipeline.Result, state: DatasetState) -> tuple:
    """What the page's derived figures and tables depend on: the result's stage keys and the
    edit log (an Edit is immutable and compares by value)."""
    return tuple(sorted(result.keys.items())), state.edits


def tag(*parts: Any) -> str:
    """A short stable name for a widget whose choices change with the edits (its key changes,
    so it starts fresh instead of showing a choice from before: a name or a cluster gone)."""
    return f"{hash(parts) & 0xFFFFFFFF:08x}"
