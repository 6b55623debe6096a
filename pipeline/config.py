"""Settings: one frozen ``<Stage>Params`` per stage, gathered in ``PipelineConfig``.

Every params field changes a stage's output and nothing else does; run-time knobs
(device, batch size, chunk size, LLM concurrency/timeout/retries) live in ``context.Runtime``
and stay out of cache keys. Values are checked on construction, so a bad setting fails before
anything runs.

Keys are dotted paths; a section may hold a nested one (``label.llm.model``, ``[label.llm]`` in
TOML). A few run-time keys (``RUNTIME_KEYS``) may sit in the same files and ``--set`` lines for
convenience: ``load_settings`` hands them back separately, for ``Runtime.with_values``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .embedders import BACKENDS, DEFAULT_MODEL
from .errors import ConfigError

DEFAULT_LLM_URL = "https://api.openai.com/v1"
DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEVICES = ("auto", "cpu", "cuda")
LABEL_METHODS = ("keywords", "llm")

# Settings that TOML files and --set may carry but that never change a result: they go to
# context.Runtime (key -> field name), so they are outside every cache key.
RUNTIME_KEYS: dict[str, str] = {
    "embed.device": "device",
    "embed.scheduler": "scheduler",
    "label.llm.concurrency": "llm_concurrency",
    "label.llm.timeout_s": "llm_timeout_s",
    "label.llm.max_retries": "llm_max_retries",
}


def check_setting(section: str, name: str, value: Any, ok: bool, allowed: str) -> None:
    """A ConfigError naming ``section.name``, its value and what is allowed, unless ``ok``."""
    if not ok:
        raise ConfigError(
            f"{section}.{name} = {value!r} is not allowed; expected {allowed}",
            hint=f"set {section}.{name} to {allowed} (e.g. --set {section}.{name}=...)",
        )


def _check_seed(section: str, seed: int) -> None:
    # numpy and scikit-learn only take seeds in 0..2**32-1
    check_setting(section, "seed", seed, 0 <= seed < 2**32, "an integer in 0..4294967295")


# preprocess.text_column: one column's name, or several (joined with a newline into each text)
TextColumns = str | tuple[str, ...]
# settings whose --set value is a comma-separated list ("--set preprocess.text_column=title,body")
LIST_KEYS = ("preprocess.text_column",)


def text_columns(value: Any) -> tuple[str, ...]:
    """The column names a ``preprocess.text_column`` value holds: "" is none, a name is one."""
    if isinstance(value, str):
        return (value,) if value else ()
    return tuple(value or ())


@dataclass(frozen=True)
class PreprocessParams:
    # one name, or several joined with a newline; one name in a list is stored as that name, so
    # its cache key is the one a single column always had
    text_column: TextColumns = ""
    max_chars: int = 2000  # longer texts are cut for embedding and flagged
    min_chars: int = 1  # shorter clean texts count as "no usable text"

    def __post_init__(self):
        object.__setattr__(self, "text_column", _one_or_several(self.text_column))
        check_setting("preprocess", "max_chars", self.max_chars, self.max_chars >= 10, "an integer >= 10")
        check_setting("preprocess", "min_chars", self.min_chars, 1 <= self.min_chars <= 1000, "1..1000")
        check_setting(
            "preprocess",
            "min_chars",
            self.min_chars,
            self.min_chars <= self.max_chars,
            f"at most preprocess.max_chars ({self.max_chars})",
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The chosen text columns, in the order they are joined (empty: none chosen)."""
        return text_columns(self.text_column)


def _one_or_several(value: Any) -> TextColumns:
    """A name stays a name; a list or tuple of names becomes a tuple, or the name when it holds
    one (duplicates and missing columns are the preprocess stage's to report, with the table)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"preprocess.text_column = {value!r} has the wrong type; expected str or a list of str",
            hint='give a column name, or several: text_column = ["title", "body"] in TOML, '
            "--text-column title --text-column body on the command line",
        )
    check_setting(
        "preprocess", "text_column", list(value), all(v.strip() for v in value), "column names, none empty"
    )
    return value[0] if len(value) == 1 else tuple(value)


@dataclass(frozen=True)
class EmbedParams:
    model: str = DEFAULT_MODEL  # a sentence-transformers name or a local folder
    backend: str = "torch"  # torch | onnx-int8 | model2vec (the device is a run-time setting)

    def __post_init__(self):
        check_setting("embed", "model", self.model, bool(str(self.model).strip()), "a model name or folder")
        check_setting(
            "embed", "backend", self.backend, self.backend in BACKENDS, " or ".join(map(repr, BACKENDS))
        )


@dataclass(frozen=True)
class ReduceParams:
    n_neighbors: int = 15
    n_components: int = 5
    min_dist: float = 0.0
    metric: str = "cosine"
    seed: int = 42
    # past this many distinct texts UMAP is fitted on a seeded random sample of this many and the
    # rest are placed among their nearest sampled texts (minutes instead of hours at 1M);
    # 0 = always fit on all of them
    fit_sample: int = 50_000

    def __post_init__(self):
        check_setting("reduce", "n_neighbors", self.n_neighbors, 2 <= self.n_neighbors <= 200, "2..200")
        check_setting("reduce", "n_components", self.n_components, 2 <= self.n_components <= 100, "2..100")
        check_setting("reduce", "min_dist", self.min_dist, 0.0 <= self.min_dist <= 0.99, "0.0..0.99")
        check_setting(
            "reduce",
            "metric",
            self.metric,
            self.metric in ("cosine", "euclidean"),
            "'cosine' or 'euclidean'",
        )
        _check_seed("reduce", self.seed)
        check_setting(
            "reduce",
            "fit_sample",
            self.fit_sample,
            self.fit_sample == 0 or self.fit_sample >= 100,  # fewer gives UMAP too little to go on
            "0 (fit on all texts) or an integer >= 100",
        )


# below this cosine near-duplicate "groups" are topics (duplicates.MIN_THRESHOLD reads it)
MIN_NEAR_DUPLICATES = 0.8
# HDBSCAN's neighbour search grows with min_samples; past this it takes hours and says no more
MAX_MIN_SAMPLES = 1_000


@dataclass(frozen=True)
class ClusterParams:
    algorithm: str = "hdbscan"  # a name in pipeline.clustering.CLUSTERERS
    min_cluster_size: int = 0  # 0 = chosen from the corpus size
    min_samples: int = 0  # 0 = chosen from min_cluster_size and the texts (hdbscan.auto_min_samples_for)
    method: str = "eom"  # HDBSCAN cluster selection: "eom" or "leaf"
    epsilon: float = -1.0  # HDBSCAN cluster_selection_epsilon; -1 = chosen from the reduction
    assign_outliers: bool = False  # noise points clearly near one cluster join it (far ones stay noise)
    # required by the algorithms that need it (kmeans, agglomerative); with hdbscan: about this
    # many clusters (0 = HDBSCAN decides)
    n_clusters: int = 0
    seed: int = 42  # k-means, and the subsamples of the stability readout
    # HDBSCAN past this many distinct texts: fitted on a seeded sample of this size (sizes scaled
    # to it), the other texts labelled by their nearest sampled neighbours; 0 = always fit on all
    fit_sample: int = 200_000
    # count each group of near-duplicate texts (cosine at least this; pipeline/duplicates.py) once:
    # one representative is clustered with the group's rows, the others get its cluster; 0 = off
    near_duplicates: float = 0.0

    def __post_init__(self):
        check_setting(
            "cluster",
            "algorithm",
            self.algorithm,
            self.algorithm in _clusterers(),
            " or ".join(map(repr, _clusterers())),
        )
        check_setting(
            "cluster",
            "min_cluster_size",
            self.min_cluster_size,
            self.min_cluster_size == 0 or self.min_cluster_size >= 2,
            "0 (automatic) or >= 2",
        )
        check_setting(
            "cluster",
            "min_samples",
            self.min_samples,
            self.min_samples == 0 or 1 <= self.min_samples <= MAX_MIN_SAMPLES,
            f"0 (automatic) or 1..{MAX_MIN_SAMPLES}",
        )
        check_setting("cluster", "method", self.method, self.method in ("eom", "leaf"), "'eom' or 'leaf'")
        check_setting(
            "cluster",
            "epsilon",
            self.epsilon,
            self.epsilon == -1.0 or 0.0 <= self.epsilon <= 100.0,
            "-1 (automatic) or a distance 0..100 (0 = off)",
        )
        check_setting(
            "cluster", "n_clusters", self.n_clusters, self.n_clusters >= 0, "0 or a positive integer"
        )
        _check_seed("cluster", self.seed)
        check_setting(
            "cluster",
            "fit_sample",
            self.fit_sample,
            self.fit_sample == 0 or self.fit_sample >= 1000,
            "0 (always all texts) or at least 1000",
        )
        check_setting(
            "cluster",
            "near_duplicates",
            self.near_duplicates,
            self.near_duplicates == 0.0 or MIN_NEAR_DUPLICATES <= self.near_duplicates <= 1.0,
            f"0 (off) or a cosine similarity {MIN_NEAR_DUPLICATES}..1 (e.g. 0.95)",
        )
        if _clusterers()[self.algorithm].needs_k:  # the algorithm was checked above
            check_setting(
                "cluster",
                "n_clusters",
                self.n_clusters,
                self.n_clusters >= 1,
                f"a number of clusters >= 1 when cluster.algorithm = {self.algorithm!r}",
            )


def _clusterers() -> dict:
    # read when a ClusterParams is checked, not at import: pipeline.clustering may import config
    from .clustering import CLUSTERERS

    return CLUSTERERS


STOP_WORD_LANGUAGES = ("en", "es", "de", "fr", "pt", "it", "nl", "zh", "ja")  # see pipeline/terms.py


def _language_codes(value: str) -> bool:
    codes = [c.strip() for c in str(value).split(",")]
    return bool(codes) and all(c in STOP_WORD_LANGUAGES for c in codes)


@dataclass(frozen=True)
class LLMParams:
    """Labels from an OpenAI-compatible chat-completions API (used when label.method = "llm").

    The API key is never a setting: it comes from $OPENAI_API_KEY or ``Runtime(llm_api_key=...)``.
    Concurrency, timeout and retries are run-time settings (``RUNTIME_KEYS``).
    """

    base_url: str = DEFAULT_LLM_URL  # OpenAI, or a local server, e.g. http://localhost:11434/v1
    model: str = DEFAULT_LLM_MODEL
    max_clusters: int = 0  # label at most this many clusters, largest first; 0 = all
    examples: int = 8  # texts closest to each cluster's centre that go into the prompt
    allow_partial: bool = True  # false: a cluster the API could not label fails the stage

    def __post_init__(self):
        try:
            url = urlsplit(str(self.base_url).strip())
            has_credentials = bool(url.username or url.password)
        except ValueError:  # e.g. a broken [IPv6] host
            url, has_credentials = urlsplit(""), False
        if has_credentials:  # checked first: the message must not repeat them
            raise ConfigError(
                "label.llm.base_url holds a user name or password; expected a URL without credentials",
                hint="remove them from the URL and put the key in OPENAI_API_KEY (or the app's key field)",
            )
        check_setting(
            "label.llm",
            "base_url",
            self.base_url,
            url.scheme in ("http", "https") and bool(url.netloc),
            "an http:// or https:// URL, e.g. https://api.openai.com/v1",
        )
        check_setting("label.llm", "model", self.model, bool(str(self.model).strip()), "a model name")
        check_setting(
            "label.llm",
            "max_clusters",
            self.max_clusters,
            self.max_clusters >= 0,
            "0 (all) or a positive integer",
        )
        check_setting("label.llm", "examples", self.examples, 1 <= self.examples <= 30, "1..30")


@dataclass(frozen=True)
class LabelParams:
    n_keywords: int = 8
    n_representatives: int = 3
    label_words: int = 3  # keywords joined into the short label
    stop_words: str = "auto"  # "auto" (English + languages found), "english", "none", or codes "en,de"
    max_ngram: int = 2
    method: str = "keywords"  # "keywords" (offline) or "llm" (label.llm.*)
    llm: LLMParams = field(default_factory=LLMParams)

    def __post_init__(self):
        check_setting("label", "method", self.method, self.method in LABEL_METHODS, "'keywords' or 'llm'")
        check_setting("label", "n_keywords", self.n_keywords, 1 <= self.n_keywords <= 50, "1..50")
        check_setting(
            "label", "n_representatives", self.n_representatives, 0 <= self.n_representatives <= 20, "0..20"
        )
        check_setting("label", "label_words", self.label_words, 1 <= self.label_words <= 6, "1..6")
        check_setting(
            "label",
            "stop_words",
            self.stop_words,
            self.stop_words in ("auto", "english", "none") or _language_codes(self.stop_words),
            f"'auto', 'english', 'none' or language codes among {','.join(STOP_WORD_LANGUAGES)} (e.g. 'en,de')",
        )
        check_setting("label", "max_ngram", self.max_ngram, 1 <= self.max_ngram <= 3, "1..3")


@dataclass(frozen=True)
class StagesParams:
    """Optional stages that can be switched off; the rest always run. A field per stage that
    declares a ``bypass`` (``pipeline/stages/base.py``), named like the stage."""

    reduce: bool = True  # off: cluster on the full embeddings


@dataclass(frozen=True)
class CodebookParams:
    """Categories the analyst names (``pipeline.codebook``): read after a run, never a stage's
    input, so no cache key holds them."""

    # a text gets its closest category when their cosine is at least this; 0 = automatic (see
    # codebook.auto_threshold), -1 = every text gets its closest category
    threshold: float = 0.0

    def __post_init__(self):
        check_setting(
            "codebook",
            "threshold",
            self.threshold,
            -1.0 <= self.threshold <= 1.0,
            "a cosine similarity -1..1 (0 = automatic; -1 = every text gets its closest category)",
        )


SECTIONS: dict[str, type] = {
    "preprocess": PreprocessParams,
    "embed": EmbedParams,
    "reduce": ReduceParams,
    "cluster": ClusterParams,
    "label": LabelParams,
    "stages": StagesParams,
    "codebook": CodebookParams,
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
    codebook: CodebookParams = field(default_factory=CodebookParams)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineConfig:
        """Build from nested sections (as TOML gives them); run-time keys are not accepted here."""
        return cls().with_values(flatten(data))

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read a TOML file; run-time keys in it (``RUNTIME_KEYS``) are left to ``load_settings``."""
        return load_settings(path)[0]

    def to_toml(self, runtime: Any = None) -> str:
        """TOML text of every setting; with a ``Runtime``, its ``RUNTIME_KEYS`` values too."""
        data = self.to_dict()
        if runtime is not None:
            for dotted, name in RUNTIME_KEYS.items():
                *path, key = dotted.split(".")
                table = data
                for part in path:
                    table = table[part]
                table[key] = getattr(runtime, name)
        lines: list[str] = []
        for sec, values in data.items():
            _toml_table(sec, values, lines)
        return "\n".join(lines)

    def with_overrides(self, assignments: Iterable[str]) -> PipelineConfig:
        """Apply ``section.key=value`` strings, as given to ``--set``."""
        return self.with_values(parse_assignments(assignments))

    def with_values(self, values: dict[str, Any]) -> PipelineConfig:
        """Return a copy with ``{"section.key": value}`` applied (strings are parsed).

        Keys may reach into a nested section (``label.llm.model``). All values are applied
        together, so settings that depend on each other can be given in one call.
        """
        updates: dict[str, Any] = {}
        for dotted, value in values.items():
            kind = _setting_type(dotted)
            table = updates
            *path, key = dotted.split(".")
            for part in path:
                table = table.setdefault(part, {})
            table[key] = coerce_setting(dotted, value, kind)
        return _replace_nested(self, updates)

    def flat(self) -> dict[str, Any]:
        return dict(_flat_items(self.to_dict()))


def _replace_nested(obj: Any, updates: dict[str, Any]) -> Any:
    # innermost sections first, so each one is checked once with its final values
    changes = {
        name: _replace_nested(getattr(obj, name), value) if isinstance(value, dict) else value
        for name, value in updates.items()
    }
    return dataclasses.replace(obj, **changes)


def _flat_items(data: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _flat_items(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _setting_type(dotted: str) -> type:
    """The type of the field that ``dotted`` names; a ConfigError naming the keys if none."""
    if dotted in RUNTIME_KEYS:
        raise ConfigError(
            f"{dotted} is a run-time setting (it never changes the labels), so PipelineConfig does "
            "not hold it",
            hint=f"pass Runtime({RUNTIME_KEYS[dotted]}=...) from Python; config files and --set accept it "
            "(see config.load_settings)",
        )
    sec, *path = dotted.split(".")
    if sec not in SECTIONS or not path or not all(path):
        raise ConfigError(
            f"unknown setting {dotted!r}; expected section.key with section one of {', '.join(SECTIONS)}",
            hint="see `python -m pipeline run --help` for the settings",
        )
    cls, where = SECTIONS[sec], sec
    for i, name in enumerate(path):
        hints = typing.get_type_hints(cls)
        if name not in hints:
            raise ConfigError(
                f"unknown setting {dotted!r}; {where} has {', '.join(hints)}",
                hint=f"use one of the {where}.* keys listed",
            )
        kind = hints[name]
        last = i == len(path) - 1
        if dataclasses.is_dataclass(kind) and last:
            keys = ", ".join(f.name for f in fields(kind))
            raise ConfigError(
                f"{dotted} is a section ({keys}); expected one of its keys",
                hint=f"write e.g. --set {dotted}.{fields(kind)[0].name}=..., or [{dotted}] in a TOML file",
            )
        if not dataclasses.is_dataclass(kind) and not last:
            raise ConfigError(
                f"unknown setting {dotted!r}; {where}.{name} is a single value, not a section",
                hint=f"set {where}.{name} itself",
            )
        cls, where = kind, f"{where}.{name}"
    return kind


def flatten(data: dict[str, Any]) -> dict[str, Any]:
    """Nested sections (TOML ``[label.llm]``) to dotted keys (``label.llm.model``)."""
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
    return dict(_flat_items(data))


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """``["section.key=value", ...]`` to ``{"section.key": "value"}``; a later one wins."""
    values: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError(
                f"--set {item!r} has no '='; expected section.key=value",
                hint="write e.g. --set cluster.min_cluster_size=20",
            )
        key, raw = item.split("=", 1)
        key, raw = key.strip(), raw.strip()
        if key in LIST_KEYS:  # "title,body": several values (a name holding a comma: use a TOML list)
            parts = [part.strip() for part in raw.split(",") if part.strip()]
            values[key] = parts if len(parts) != 1 else parts[0]
        else:
            values[key] = raw
    return values


def read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
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


def load_settings(
    path: str | Path | None = None, assignments: Iterable[str] = ()
) -> tuple[PipelineConfig, dict[str, Any]]:
    """A config file, then ``--set`` assignments: ``(PipelineConfig, run-time values)``.

    The run-time values (keys of ``RUNTIME_KEYS``) are for ``Runtime.with_values``; they
    are checked there. Everything else is applied at once, so a file may set
    ``label.method = "llm"`` and ``--set`` the model.
    """
    values = flatten(read_toml(path)) if path is not None else {}
    values.update(parse_assignments(assignments))
    runtime = {key: values.pop(key) for key in list(values) if key in RUNTIME_KEYS}
    return PipelineConfig().with_values(values), runtime


def _toml_table(name: str, values: dict[str, Any], lines: list[str]) -> None:
    lines.append(f"[{name}]")
    for key, value in values.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml_value(value)}")
    lines.append("")
    for key, value in values.items():
        if isinstance(value, dict):
            _toml_table(f"{name}.{key}", value, lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _toml_string(str(value))


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


def coerce_setting(dotted: str, value: Any, kind: type) -> Any:
    """``value`` as the setting ``dotted`` of type ``kind`` needs it: text (from --set or a form) is
    parsed; anything else must already have the type (an int is accepted for a float)."""
    if kind == TextColumns:  # a name, or a list of names (checked by PreprocessParams)
        return value if isinstance(value, str) else _one_or_several(value)
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
    """Every settings key, nested ones dotted (``label.llm.model``); not the run-time keys."""
    return list(PipelineConfig().flat())
