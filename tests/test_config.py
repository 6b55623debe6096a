"""PipelineConfig: defaults, --set overrides, range checks and TOML files."""

from __future__ import annotations

import pytest

from pipeline import ConfigError, PipelineConfig
from pipeline.config import DEFAULT_MODEL, ClusterParams, all_keys

# Every key the command line documents for --set.
CLI_KEYS = {
    "embed.model": ("my-org/encoder", "my-org/encoder"),
    "reduce.n_neighbors": ("30", 30),
    "reduce.n_components": ("10", 10),
    "reduce.min_dist": ("0.25", 0.25),
    "cluster.min_cluster_size": ("20", 20),
    "cluster.min_samples": ("3", 3),
    "cluster.method": ("leaf", "leaf"),
    "cluster.assign_outliers": ("true", True),
    "cluster.algorithm": ("kmeans", "kmeans"),
    "cluster.n_clusters": ("7", 7),
    "label.n_keywords": ("12", 12),
    "stages.reduce": ("false", False),
}


def config_error(assignments: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_overrides(assignments)
    assert info.value.stage == "config"
    return info.value.user_message()


def test_defaults_are_valid():
    config = PipelineConfig()
    flat = config.flat()
    assert flat["embed.model"] == DEFAULT_MODEL
    assert flat["cluster.algorithm"] == "hdbscan"
    assert flat["cluster.min_cluster_size"] == 0
    assert flat["reduce.min_dist"] == 0.0
    assert flat["stages.reduce"] is True
    assert set(flat) == set(all_keys())
    assert set(CLI_KEYS) <= set(all_keys())
    assert PipelineConfig.from_dict({}) == config


def test_overrides_parse_types():
    config = PipelineConfig().with_overrides(
        [
            "cluster.min_cluster_size=20",
            "cluster.assign_outliers=true",
            "reduce.min_dist=0.1",
            "embed.model=foo",
        ]
    )
    assert config.cluster.min_cluster_size == 20 and type(config.cluster.min_cluster_size) is int
    assert config.cluster.assign_outliers is True
    assert config.reduce.min_dist == 0.1 and type(config.reduce.min_dist) is float
    assert config.embed.model == "foo"
    # the rest stays at the defaults, and the original is untouched
    assert config.cluster.method == "eom"
    assert PipelineConfig().cluster.min_cluster_size == 0


@pytest.mark.parametrize("key", sorted(CLI_KEYS))
def test_every_cli_key_can_be_set(key):
    raw, expected = CLI_KEYS[key]
    extra = ["cluster.n_clusters=4"] if key == "cluster.algorithm" else []
    config = PipelineConfig().with_overrides([f"{key}={raw}", *extra])
    value = config.flat()[key]
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("off", False),
        ("0", False),
    ],
)
def test_bool_spellings(raw, expected):
    assert (
        PipelineConfig().with_overrides([f"cluster.assign_outliers={raw}"]).cluster.assign_outliers
        is expected
    )


def test_spaces_around_key_and_value_and_later_override_wins():
    config = PipelineConfig().with_overrides(
        [" cluster.method = leaf ", "label.n_keywords=3", "label.n_keywords=5"]
    )
    assert config.cluster.method == "leaf"
    assert config.label.n_keywords == 5


def test_kmeans_with_n_clusters_in_the_same_call():
    config = PipelineConfig().with_overrides(["cluster.algorithm=kmeans", "cluster.n_clusters=5"])
    assert (config.cluster.algorithm, config.cluster.n_clusters) == ("kmeans", 5)


# --- errors --------------------------------------------------------------------------


def test_unknown_section():
    message = config_error(["clustering.min_cluster_size=5"])
    assert "unknown setting 'clustering.min_cluster_size'" in message
    assert "preprocess, embed, reduce, cluster, label, stages" in message


def test_unknown_key_lists_the_keys_of_its_section():
    message = config_error(["cluster.min_size=5"])
    assert "unknown setting 'cluster.min_size'" in message
    assert "min_cluster_size" in message and "assign_outliers" in message


def test_key_without_section_and_assignment_without_equals():
    assert "unknown setting 'min_cluster_size'" in config_error(["min_cluster_size=5"])
    message = config_error(["cluster.min_cluster_size"])
    assert "has no '='" in message
    assert "--set cluster.min_cluster_size=20" in message


@pytest.mark.parametrize(
    "assignment, found, kind, expected",
    [
        ("cluster.min_cluster_size=twenty", "'twenty'", "int", "an integer"),
        ("cluster.min_cluster_size=2.5", "'2.5'", "int", "an integer"),
        ("reduce.n_neighbors=", "''", "int", "an integer"),
        ("cluster.assign_outliers=maybe", "'maybe'", "bool", "true or false"),
        ("stages.reduce=2", "'2'", "bool", "true or false"),
        ("reduce.min_dist=small", "'small'", "float", "a number"),
    ],
)
def test_values_of_the_wrong_type(assignment, found, kind, expected):
    key = assignment.split("=")[0]
    message = config_error([assignment])
    assert f"{key} = {found} is not a valid {kind}" in message
    assert f"What to do: give {key} {expected}, e.g. --set {key}=" in message


@pytest.mark.parametrize(
    "assignment, allowed",
    [
        ("reduce.n_neighbors=1", "2..200"),
        ("reduce.n_neighbors=201", "2..200"),
        ("reduce.n_components=1", "2..100"),
        ("reduce.min_dist=1.0", "0.0..0.99"),
        ("reduce.min_dist=-0.1", "0.0..0.99"),
        ("reduce.min_dist=nan", "0.0..0.99"),
        ("reduce.seed=-1", "an integer in 0..4294967295"),
        ("cluster.min_cluster_size=1", "0 (automatic) or >= 2"),
        ("cluster.min_samples=-1", "0 (automatic) or 1..1000"),
        ("cluster.min_samples=1001", "0 (automatic) or 1..1000"),
        ("cluster.min_samples=100000000000000000000000", "0 (automatic) or 1..1000"),
        ("cluster.method=dbscan", "'eom' or 'leaf'"),
        ("cluster.algorithm=dbscan", "'hdbscan' or 'kmeans'"),
        ("cluster.n_clusters=-2", "0 or a positive integer"),
        ("label.n_keywords=0", "1..50"),
        ("label.n_keywords=51", "1..50"),
        ("embed.model= ", "a model name or folder"),
        ("preprocess.max_chars=5", "an integer >= 10"),
    ],
)
def test_out_of_range_values_name_key_and_range(assignment, allowed):
    key, value = assignment.split("=")
    message = config_error([assignment])
    assert f"{key} = " in message
    assert f"is not allowed; expected {allowed}" in message
    assert f"set {key} to {allowed}" in message


def test_kmeans_without_n_clusters():
    message = config_error(["cluster.algorithm=kmeans"])
    assert "cluster.n_clusters = 0 is not allowed" in message
    assert ">= 1 when cluster.algorithm = 'kmeans'" in message
    with pytest.raises(ConfigError):
        ClusterParams(algorithm="kmeans")


def test_min_chars_above_max_chars():
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_values({"preprocess.max_chars": 50, "preprocess.min_chars": 60})
    assert "preprocess.min_chars = 60 is not allowed; expected at most preprocess.max_chars (50)" in str(
        info.value
    )


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("cluster.min_cluster_size", 2.0, "int"),
        ("cluster.min_cluster_size", True, "int"),
        ("cluster.assign_outliers", 1, "bool"),
        ("embed.model", 5, "str"),
        ("preprocess.text_column", 2024, "str"),
    ],
)
def test_typed_values_of_the_wrong_type(key, value, expected):
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_values({key: value})
    assert f"{key} = {value!r} has the wrong type; expected {expected}" in info.value.user_message()


def test_typed_values_int_for_float_is_fine():
    config = PipelineConfig().with_values({"reduce.min_dist": 0, "cluster.min_cluster_size": 12})
    assert config.reduce.min_dist == 0.0 and type(config.reduce.min_dist) is float
    assert config.cluster.min_cluster_size == 12


# --- TOML ----------------------------------------------------------------------------


def test_toml_round_trip(tmp_path):
    config = PipelineConfig().with_values(
        {
            "preprocess.text_column": 'Comment "free text"\nC:\\notes\t€ 日本',
            "embed.model": "/models/my encoder",
            "reduce.min_dist": 0.05,
            "reduce.n_neighbors": 30,
            "cluster.algorithm": "kmeans",
            "cluster.n_clusters": 9,
            "cluster.assign_outliers": True,
            "label.stop_words": "none",
            "stages.reduce": False,
        }
    )
    path = tmp_path / "run.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    loaded = PipelineConfig.from_toml(path)
    assert loaded == config
    assert loaded.preprocess.text_column == 'Comment "free text"\nC:\\notes\t€ 日本'
    assert PipelineConfig.from_toml(_write(tmp_path, PipelineConfig().to_toml())) == PipelineConfig()


def _write(tmp_path, text: str, name: str = "c.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_partial_toml_file_keeps_defaults(tmp_path):
    config = PipelineConfig.from_toml(_write(tmp_path, "[cluster]\nmin_cluster_size = 25\n"))
    assert config.cluster.min_cluster_size == 25
    assert config.reduce == PipelineConfig().reduce


def test_invalid_toml(tmp_path):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(_write(tmp_path, "[cluster\nmin_cluster_size = \n"))
    message = info.value.user_message()
    assert "c.toml is not valid TOML" in message
    assert "line 1" in message
    assert "What to do: fix the line it names" in message


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(tmp_path / "missing.toml")
    assert "missing.toml does not exist" in info.value.user_message()
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(tmp_path)
    assert "could not be read" in info.value.user_message()
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[embed]\nmodel = "café"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(latin)
    assert "latin.toml is not UTF-8 text" in info.value.user_message()


def test_toml_with_unknown_section_bad_value_or_flat_key(tmp_path):
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(_write(tmp_path, "[clustering]\nmin_cluster_size = 5\n"))
    assert "unknown section(s) clustering" in info.value.user_message()
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(_write(tmp_path, "[reduce]\nn_neighbors = 1\n"))
    assert "reduce.n_neighbors = 1 is not allowed; expected 2..200" in info.value.user_message()
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(_write(tmp_path, 'embed = "foo"\n'))
    assert "embed = 'foo' is a single value; expected a section [embed]" in info.value.user_message()
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_toml(_write(tmp_path, "[cluster]\nmin_cluster_size = 2.5\n"))
    assert "has the wrong type; expected int" in info.value.user_message()
