"""``embed.backend = onnx-int8``: the same sentence-transformers model through ONNX Runtime.

On first use the transformer is exported to ONNX from the local weights (``torch.onnx``),
its weights quantized to int8 (ONNX Runtime's dynamic quantization), and the files kept
in the shared models folder (``Runtime.models_folder``). Later loads only open the file. Tokens come from the model's own
``tokenizer.json`` (the ``tokenizers`` package); pooling and L2 normalisation are numpy.
Nothing is downloaded. Runs on the CPU.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np

from . import _build
from .base import Backend, Report, offline_environment, part, quiet, resolve_model

log = logging.getLogger(__name__)

NAME = "onnx-int8"
RECIPE = 1  # bump when the export or quantization recipe changes: the files are rebuilt
OPSET = 17
DEPENDS_ON = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers")
# the first use's build, measured from a fresh models folder (what the progress says meanwhile)
BUILD_TOOK = "11 s on a busy 2-core machine"  # 10.4 and 11.9 s measured
EXPORT_AT, QUANTIZE_AT = 0.5, 0.8  # where those steps began, as shares of a measured build


def identity_suffix() -> str:
    """What besides the model makes these vectors: the runtime and the recipe."""
    return f"|onnxruntime=={_build.lib_version('onnxruntime')}|r{RECIPE}"


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def export(layout: dict, out: Path, report: Report = quiet) -> None:
    """Export the transformer to ``out/model.onnx``, quantize it to ``out/model.int8.onnx``."""
    report(0.0, "reading the transformer")
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # eager attention, and a padded example: SDPA's mask handling branches on Python values
    # while tracing, which could fix one padding case into the graph
    model, tokenizer = _build.load_transformer(layout["transformer"], attn_implementation="eager")
    tokenizer.save_pretrained(out)  # writes tokenizer.json beside the model
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in tokenizer.model_input_names:
        names.append("token_type_ids")

    class LastHidden(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tokenizer(["a short text", "a somewhat longer text, padded to the longest"], padding=True)
    example = tuple(torch.tensor(sample[name], dtype=torch.long) for name in names)
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
    report(EXPORT_AT, "exporting it to ONNX")
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer chatter about Python booleans in the graph
        torch.onnx.export(
            LastHidden(model),
            example,
            str(out / "model.onnx"),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )
    # int8 weights per output channel, in the MatMuls only (the token embedding table stays
    # float): cosine to the PyTorch vectors 0.994 on average, against 0.969 per tensor
    report(QUANTIZE_AT, "quantizing its weights to int8")
    root = logging.getLogger()
    advice = _DropAdvice()
    root.addFilter(advice)  # it advises pre-processing on the root logger; that fails on this graph
    try:
        quantize_dynamic(
            out / "model.onnx",
            out / "model.int8.onnx",
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.removeFilter(advice)
    (out / "model.onnx").unlink()  # only the int8 graph is used; keeps the cache small


class OnnxInt8Embedder:
    """int8 ONNX Runtime session over an exported sentence-transformers model (CPU)."""

    def __init__(self, source: str, model_identity: str, models_root: Path, batch_size: int = 32):
        self.source = source
        self.model_identity = model_identity
        self.identity = f"{NAME}:{model_identity}{identity_suffix()}"
        self.batch_size = max(1, batch_size)
        self.folder = _build.model_folder(
            models_root,
            NAME,
            model_identity,
            {name: _build.lib_version(name) for name in DEPENDS_ON} | {"recipe": str(RECIPE)},
        )
        self._session = None
        self._tokenizer = None
        self._pooling = "mean"
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self, report: Report = quiet) -> None:
        """Open the int8 model (building it first, on its first use on this machine)."""
        with self._lock:
            if self._session is None:
                offline_environment()
                report(0.0, "starting ONNX Runtime")
                import onnxruntime as ort
                from tokenizers import Tokenizer

                layout = _build.source_layout(self.source, NAME)
                about = {"source": self.model_identity, "recipe": str(RECIPE), **layout}
                _build.build_once(
                    self.folder,
                    lambda out, step: export(layout, out, step),
                    f"the {NAME} model",
                    about,
                    part(report, 0.05, 0.95),
                    took=BUILD_TOOK,
                )
                report(0.95, "opening the int8 ONNX model")
                tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                tokenizer.no_padding()  # tokenizer.json may pin a fixed length; pad per batch instead
                tokenizer.enable_truncation(layout["max_seq_length"])
                options = ort.SessionOptions()
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3
                session = ort.InferenceSession(
                    str(self.folder / "model.int8.onnx"), options, providers=["CPUExecutionProvider"]
                )
                self._inputs = [i.name for i in session.get_inputs()]
                self._pooling = layout["pooling"]
                self._tokenizer = tokenizer
                self._session = session  # last: ``loaded`` is true only once all of it is set

    def _load(self):
        self.load()
        return self._session

    def encode(self, texts: list[str]) -> np.ndarray:
        session = self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        out = np.empty((len(texts), 0), dtype=np.float32)
        # shortest first, so each batch pads little
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), self.batch_size):
            index = order[start : start + self.batch_size]
            batch = [encodings[i] for i in index]
            width = max(len(e.ids) for e in batch)
            feed = {name: np.zeros((len(batch), width), dtype=np.int64) for name in self._inputs}
            for row, enc in enumerate(batch):
                n = len(enc.ids)
                feed["input_ids"][row, :n] = enc.ids
                feed["attention_mask"][row, :n] = 1
                if "token_type_ids" in feed:
                    feed["token_type_ids"][row, :n] = enc.type_ids
            hidden = session.run(None, feed)[0]
            vectors = self._pool(hidden, feed["attention_mask"])
            if out.shape[1] == 0:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[index] = vectors
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _load(model: str, device: str, batch_size: int, models: Path) -> OnnxInt8Embedder:
    source, model_identity = resolve_model(model)
    return OnnxInt8Embedder(source, model_identity, models, batch_size)


BACKEND = Backend(
    name=NAME,
    label="Fast (ONNX int8, ~3x)",
    load=_load,
    libraries=("onnxruntime",),
    suffix=identity_suffix,
    cpu_only=True,
    builds=True,
)
