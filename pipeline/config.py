"""Settings: one frozen ``<Stage>Params`` per stage, gathered in ``PipelineConfig``.

Every params field changes a stage's output and nothing else does; run-time knobs
(device, batch size, chunk size) live in ``runner.Runtime`` and stay out of cache keys.
Values are checked on construction, so a bad setting fails before anything runs.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
OPTIONAL_STAGES = ("reduce",)


def _check(section: str, name: str, value: Any, ok: bool, allowed: str) -> None:
    if not ok:
        raise ConfigError(
            f"{section}.{name} = {value!r} is not allowed; expected {allowed}",
            hint=f"set {section}.{name} to {allowed} (e.g. --set {section}.{name}=...)",
        )


def _check_seed(section: str, seed: int) -> None:
    # numpy and scikit-learn only take seeds in 0..2**32-1
    _check(section, "seed", seed, 0 <= seed < 2**32, "an integer in 0..4294967295")


@dataclass(frozen=True)
class PreprocessParams:
    text_column: str = ""
    max_chars: int = 2000  # longer texts are cut for embedding and flagged
    min_chars: int = 1  # shorter clean texts count as "no usable text"

    def __post_init__(self):
        _check("preprocess", "max_chars", self.max_chars, self.max_chars >= 10, "an integer >= 10")
        _check("preprocess", "min_chars", self.min_chars, 1 <= self.min_chars <= 1000, "1..1000")
        _check(
            "preprocess",
            "min_chars",
            self.min_chars,
            self.min_chars <= self.max_chars,
            f"at most preprocess.max_chars ({self.max_chars})",
        )


@dataclass(frozen=True)
class EmbedParams:
    model: str = DEFAULT_MODEL  # a sentence-transformers name or a local folder
    backend: str = "torch"

    def __post_init__(self):
        _check("embed", "model", self.model, bool(str(self.model).strip()), "a model name or folder")
        _check("embed", "backend", self.backend, self.backend in ("torch",), "'torch'")


@dataclass(frozen=True)
class ReduceParams:
    n_neighbors: int = 15
    n_components: int = 5
    min_dist: float = 0.0
    metric: str = "cosine"
    seed: int = 42

    def __post_init__(self):
        _check("reduce", "n_neighbors", self.n_neighbors, 2 <= self.n_neighbors <= 200, "2..200")
        _check("reduce", "n_components", self.n_components, 2 <= self.n_components <= 100, "2..100")
        _check("reduce", "min_dist", self.min_dist, 0.0 <= self.min_dist <= 0.99, "0.0..0.99")
        _check(
            "reduce",
            "metric",
            self.metric,
            self.metric in ("cosine", "euclidean"),
            "'cosine' or 'euclidean'",
        )
        _check_seed("reduce", self.seed)


@dataclass(frozen=True)
class ClusterParams:
    algorithm: str = "hdbscan"  # or "kmeans"
    min_cluster_size: int = 0  # 0 = chosen from the corpus size
    min_samples: int = 0  # 0 = chosen from min_cluster_size
    method: str = "eom"  # HDBSCAN cluster selection: "eom" or "leaf"
    assign_outliers: bool = False  # put noise points into their nearest cluster
    n_clusters: int = 0  # k for k-means
    seed: int = 42

    def __post_init__(self):
        _check(
            "cluster",
            "algorithm",
            self.algorithm,
            self.algorithm in ("hdbscan", "kmeans"),
            "'hdbscan' or 'kmeans'",
        )
        _check(
            "cluster",
            "min_cluster_size",
            self.min_cluster_size,
            self.min_cluster_size == 0 or self.min_cluster_size >= 2,
            "0 (automatic) or >= 2",
        )
        _check("cluster", "min_samples", self.min_samples, self.min_samples >= 0, "0 (automatic) or >= 1")
        _check("cluster", "method", self.method, self.method in ("eom", "leaf"), "'eom' or 'leaf'")
        _check("cluster", "n_clusters", self.n_clusters, self.n_clusters >= 0, "0 or a positive integer")
        _check_seed("cluster", self.seed)
        if self.algorithm == "kmeans":
            _check(
                "cluster",
                "n_clusters",
                self.n_clusters,
                self.n_clusters >= 1,
                "a number of clusters >= 1 when cluster.algorithm = 'kmeans'",
            )


@dataclass(frozen=True)
class LabelParams:
    n_keywords: int = 8
    n_representatives: int = 3
    label_words: int = 3  # keywords joined into the short label
    stop_words: str = "english"  # or "none"
    max_ngram: int = 2

    def __post_init__(self):
        _check("label", "n_keywords", self.n_keywords, 1 <= self.n_keywords <= 50, "1..50")
        _check(
            "label", "n_representatives", self.n_representatives, 0 <= self.n_representatives <= 20, "0..20"
        )
        _check("label", "label_words", self.label_words, 1 <= self.label_words <= 6, "1..6")
        _check(
            "label",
            "stop_words",
            self.stop_words,
            self.stop_words in ("english", "none"),
            "'english' or 'none'",
        )
        _check("label", "max_ngram", self.max_ngram, 1 <= self.max_ngram <= 3, "1..3")


@dataclass(frozen=True)
class StagesParams:
    """Optional stages that can be switched off; the rest always run."""

    reduce: bool = True  # off: cluster on the full embeddings


SECTIONS: dict[str, type] = {
    "preprocess": PreprocessParams,
    "embed": EmbedParams,
    "reduce": ReduceParams,
    "cluster": ClusterParams,
    "label": LabelParams,
    "stages": StagesParams,
}


@dataclass(frozen=True)
class PipelineConfig:
    """Every setting of a run; serialisable to TOML and into the manifest."""

    preprocess: PreprocessParams = field(default_factory=PreprocessParams)
    embed: EmbedParams = field(default_factory=EmbedParams)
    reduce: ReduceParams = field(default_factory=ReduceParams)
    cluster: ClusterParams = field(default_factory=ClusterParams)
    label: LabelParams = field(default_factory=LabelParams)
    stages: StagesParams = field(default_factory=StagesParams)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(
                f"unknown section(s) {', '.join(unknown)}; expected one of {', '.join(SECTIONS)}",
                hint="check the spelling of the [section] names in your config file",
            )
        for sec, values in data.items():
            if not isinstance(values, dict):
                raise ConfigError(
                    f"{sec} = {values!r} is a single value; expected a section [{sec}] of settings",
                    hint=f"write [{sec}] on its own line, then one key = value per line",
                )
        return cls().with_values(
            {f"{sec}.{key}": value for sec, values in data.items() for key, value in values.items()}
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist", hint="check the path") from None
        except OSError as exc:  # a folder, no permission, ...
            raise ConfigError(
                f"config file {path} could not be read ({exc.strerror or type(exc).__name__})",
                hint="give the path of a readable .toml file",
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(
                f"config file {path} is not UTF-8 text", hint="save it as a UTF-8 .toml file"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"config file {path} is not valid TOML ({exc})", hint="fix the line it names"
            ) from None
        return cls.from_dict(data)

    def to_toml(self) -> str:
        lines = []
        for sec, values in self.to_dict().items():
            lines.append(f"[{sec}]")
            for key, value in values.items():
                if isinstance(value, bool):
                    lines.append(f"{key} = {'true' if value else 'false'}")
                elif isinstance(value, (int, float)):
                    lines.append(f"{key} = {value}")
                else:
                    lines.append(f"{key} = {_toml_string(str(value))}")
            lines.append("")
        return "\n".join(lines)

    def with_overrides(self, assignments: list[str]) -> PipelineConfig:
        """Apply ``section.key=value`` strings, as given to ``--set``."""
        values: dict[str, Any] = {}
        for item in assignments:
            if "=" not in item:
                raise ConfigError(
                    f"--set {item!r} has no '='; expected section.key=value",
                    hint="write e.g. --set cluster.min_cluster_size=20",
                )
            key, raw = item.split("=", 1)
            values[key.strip()] = raw.strip()
        return self.with_values(values)

    def with_values(self, values: dict[str, Any]) -> PipelineConfig:
        """Return a copy with ``{"section.key": value}`` applied (strings are parsed)."""
        updates: dict[str, dict[str, Any]] = {}
        for dotted, value in values.items():
            sec, _, key = dotted.partition(".")
            if sec not in SECTIONS or not key:
                raise ConfigError(
                    f"unknown setting {dotted!r}; expected section.key with section one of "
                    f"{', '.join(SECTIONS)}",
                    hint="see `python -m pipeline run --help` for the settings",
                )
            hints = typing.get_type_hints(SECTIONS[sec])
            if key not in hints:
                raise ConfigError(
                    f"unknown setting {dotted!r}; {sec} has {', '.join(hints)}",
                    hint=f"use one of the {sec}.* keys listed",
                )
            updates.setdefault(sec, {})[key] = _coerce(dotted, value, hints[key])
        changed = {sec: dataclasses.replace(getattr(self, sec), **kv) for sec, kv in updates.items()}
        return dataclasses.replace(self, **changed)

    def flat(self) -> dict[str, Any]:
        return {f"{sec}.{k}": v for sec, vals in self.to_dict().items() for k, v in vals.items()}


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_KIND_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a text value"}


def _coerce(dotted: str, value: Any, kind: type) -> Any:
    if kind is str and not isinstance(value, str):
        raise ConfigError(
            f"{dotted} = {value!r} has the wrong type; expected str",
            hint=f'give {dotted} a text value (in a TOML file, put it in "quotes")',
        )
    if not isinstance(value, str) or kind is str:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if kind is not str and (type(value) is not kind):
            raise ConfigError(
                f"{dotted} = {value!r} has the wrong type; expected {kind.__name__}",
                hint=f"give {dotted} {_KIND_NAMES[kind.__name__]}",
            )
        return value
    text = value.strip()
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ConfigError(
            f"{dotted} = {text!r} is not a valid {kind.__name__}",
            hint=f"give {dotted} {_KIND_NAMES[kind.__name__]}, e.g. --set {dotted}="
            + {"bool": "true", "int": "10", "float": "0.1"}.get(kind.__name__, "..."),
        ) from None


def all_keys() -> list[str]:
    return [f"{sec}.{f.name}" for sec, cls in SECTIONS.items() for f in fields(cls)]
