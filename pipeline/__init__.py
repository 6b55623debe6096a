"""Clusterlab's pipeline: preprocess -> embed -> reduce -> cluster -> label.

Public API::

    table = pipeline.read_table("feedback.csv")
    config = pipeline.PipelineConfig().with_values({"preprocess.text_column": "comment"})
    result = pipeline.run(table, config, on_event=print)
    result.table()      # every input row + cluster_id, cluster_label, ...

The package never imports streamlit; the app and the command line both sit on this API.
"""

from pathlib import Path

from .cache import Cache, default_cache_dir
from .config import (
    ClusterParams,
    EmbedParams,
    LabelParams,
    LLMParams,
    PipelineConfig,
    PreprocessParams,
    ReduceParams,
    StagesParams,
)
from .context import Runtime, Secret
from .errors import Cancelled, ConfigError, InputError, PipelineError, StageError
from .events import Event
from .io import csv_bytes, read_table, suggest_text_column, write_outputs
from .llm import CostEstimate
from .result import OUTPUT_COLUMNS, Result
from .runner import PlanStep, estimate_llm_labels, plan, run, stream
from .types import LabelFallback, Table

SAMPLE_CSV = Path(__file__).parent / "data" / "sample_feedback.csv"
SAMPLE_TEXT_COLUMN = "comment"

__all__ = [
    "Cache",
    "Cancelled",
    "ClusterParams",
    "ConfigError",
    "CostEstimate",
    "EmbedParams",
    "Event",
    "InputError",
    "LLMParams",
    "LabelFallback",
    "LabelParams",
    "OUTPUT_COLUMNS",
    "PipelineConfig",
    "PipelineError",
    "PlanStep",
    "PreprocessParams",
    "ReduceParams",
    "Result",
    "Runtime",
    "SAMPLE_CSV",
    "SAMPLE_TEXT_COLUMN",
    "Secret",
    "StageError",
    "StagesParams",
    "Table",
    "csv_bytes",
    "default_cache_dir",
    "estimate_llm_labels",
    "plan",
    "read_table",
    "run",
    "stream",
    "suggest_text_column",
    "write_outputs",
]
