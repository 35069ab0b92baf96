"""Exported models (`floodlab export`) in use: their JSON sidecar and a batched `PredictFn`.

An exported model is one file (``flood.onnx`` or ``flood.pt``) and its sidecar beside it
(``flood.onnx.json``), which says what the graph takes and returns (see
`floodlab.predict.graph`): the input bands in order and their units, the normalisation
inside the graph, the outputs, the probability threshold, the family, the spec hash and the
run it came from.

The graph normalises its input itself, so scene prediction hands it physical values with
NaN at nodata (`physical_input`) and reuses the windowed scene machinery
(`floodlab.predict.scene`) unchanged. ONNX models run on onnxruntime: nothing on this path
imports torch. TorchScript models need torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from floodlab.errors import ExportError

FORMATS: tuple[str, ...] = ("onnx", "torchscript")
SUFFIXES: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
SIDECAR_KEYS: tuple[str, ...] = ("format", "input", "outputs", "threshold", "family", "run")


def sidecar_path(model: str | Path) -> Path:
    """``flood.onnx`` -> ``flood.onnx.json``: where an exported model's sidecar lies."""
    p = Path(model)
    return p.with_name(f"{p.name}.json")


def physical_input(window: np.ndarray) -> np.ndarray:
    """The `Normalize` of scene prediction for an exported graph: physical values with NaN
    at nodata, as float32 (the graph normalises them and zeroes nodata itself)."""
    return np.asarray(window, dtype=np.float32).copy()


class OnnxPredictFn:
    """A `PredictFn` over an ONNX model on onnxruntime (no torch).

    The session is created on first use in the process that runs it, so the object can be
    sent to Ray workers.

    Args:
        path: the ONNX file.
        input_name: the graph's input.
        outputs: the graph's outputs, in order.
        device: "auto" (CUDA when onnxruntime has it), "cpu" or "cuda".
    """

    def __init__(self, path: str | Path, input_name: str, outputs: tuple[str, ...], device: str):
        self.path, self.input_name, self.outputs, self.device = (
            Path(path),
            input_name,
            outputs,
            device,
        )
        self._session: Any = None

    def _providers(self) -> list[str]:
        import onnxruntime

        have = onnxruntime.get_available_providers()
        cuda = "CUDAExecutionProvider"
        if self.device == "cuda" and cuda not in have:
            raise ExportError(
                f"--device cuda: this onnxruntime has no CUDA provider (it has {have}); install "
                "onnxruntime-gpu or pass --device cpu"
            )
        if self.device != "cpu" and cuda in have:
            return [cuda, "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(B, C, h, w) physical bands, NaN at nodata -> output name -> (B, C_k, h, w)."""
        if self._session is None:
            import onnxruntime
            from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

            providers = self._providers()
            unloadable = (
                ort_errors.Fail,
                ort_errors.InvalidProtobuf,
                ort_errors.InvalidGraph,
                ort_errors.NoSuchFile,
            )
            try:
                self._session = onnxruntime.InferenceSession(str(self.path), providers=providers)
            except unloadable as e:
                raise ExportError(
                    f"{self.path}: onnxruntime cannot load it ({str(e).splitlines()[0]}); "
                    "export the run again with `floodlab export RUN --format onnx`"
                ) from None
        values = self._session.run(list(self.outputs), {self.input_name: batch})
        return dict(zip(self.outputs, values, strict=True))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_session": None}


class TorchScriptPredictFn:
    """A `PredictFn` over a TorchScript model (needs torch); loaded on first use.

    Args:
        path: the TorchScript file.
        outputs: the graph's outputs, in order.
        device: "auto" (CUDA when available), "cpu" or "cuda".
    """

    def __init__(self, path: str | Path, outputs: tuple[str, ...], device: str):
        self.path, self.outputs, self.device = Path(path), outputs, device
        self._module: Any = None
        self._device: Any = None

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(B, C, h, w) physical bands, NaN at nodata -> output name -> (B, C_k, h, w)."""
        import torch

        if self._module is None:
            name = self.device
            if name == "auto":
                name = "cuda" if torch.cuda.is_available() else "cpu"
            self._device = torch.device(name)
            self._module = torch.jit.load(str(self.path), map_location=self._device).eval()
        with torch.inference_mode():
            values = self._module(torch.from_numpy(batch).to(self._device))
        return {k: v.float().cpu().numpy() for k, v in zip(self.outputs, values, strict=True)}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_module": None, "_device": None}


def _malformed(sidecar: dict[str, Any]) -> list[str]:
    """The fields of a sidecar (that has every key) that `ExportedModel` cannot use."""
    bad = []
    inp = sidecar["input"]
    if not (
        isinstance(inp, dict)
        and isinstance(inp.get("name"), str)
        and isinstance(inp.get("bands"), list)
        and inp["bands"]
        and all(isinstance(b, str) for b in inp["bands"])
    ):
        bad.append("input")
    outputs = sidecar["outputs"]
    if not (isinstance(outputs, dict) and outputs and "prob" in outputs):
        bad.append("outputs")
    threshold = sidecar["threshold"]
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0.0 <= threshold <= 1.0
    ):
        bad.append("threshold")
    return bad


@dataclass
class ExportedModel:
    """An exported model file and its sidecar.

    Attributes:
        path: the model file.
        sidecar: the parsed sidecar (see `floodlab.predict.export.sidecar_for`).
    """

    path: Path
    sidecar: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> ExportedModel:
        """Read a model's sidecar and check that the pair can be used.

        Raises:
            ExportError: the file or its sidecar is missing or not a floodlab export.
        """
        path = Path(path)
        meta = sidecar_path(path)
        if not path.is_file():
            raise ExportError(
                f"--model {path}: no such file; give a model written by `floodlab export`"
            )
        if not meta.is_file():
            raise ExportError(
                f"--model {path}: its sidecar {meta.name} is missing beside it; it holds the "
                "bands, units and outputs of the model. Keep the two files together, or export "
                "the run again with `floodlab export RUN -o FILE`"
            )
        try:
            sidecar = json.loads(meta.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ExportError(f"{meta}: not a readable JSON sidecar ({e})") from None
        missing = [k for k in SIDECAR_KEYS if not isinstance(sidecar, dict) or k not in sidecar]
        if not missing:
            missing = _malformed(sidecar)
        if missing or sidecar.get("format") not in FORMATS:
            raise ExportError(
                f"{meta}: not the sidecar of a floodlab export (missing or malformed "
                f"{missing or ['format']}); export the run again with "
                "`floodlab export RUN -o FILE`"
            )
        return cls(path=path, sidecar=sidecar)

    @property
    def format(self) -> str:
        """ "onnx" or "torchscript"."""
        return str(self.sidecar["format"])

    @property
    def bands(self) -> list[str]:
        """The input bands, in the order of the input's channels."""
        return [str(b) for b in self.sidecar["input"]["bands"]]

    @property
    def outputs(self) -> tuple[str, ...]:
        """The graph's outputs, in order ("prob", and "rgb" for FLoRA)."""
        return tuple(str(k) for k in self.sidecar["outputs"])

    @property
    def threshold(self) -> float:
        """The probability from which a pixel is water (cloud)."""
        return float(self.sidecar["threshold"])

    @property
    def write_rgb(self) -> bool:
        """Whether the model translates SAR to RGB (FLoRA)."""
        return "rgb" in self.outputs

    def predict_fn(self, device: str = "auto") -> OnnxPredictFn | TorchScriptPredictFn:
        """The model as a `PredictFn` of physical bands (use `physical_input` to normalise)."""
        if self.format == "onnx":
            return OnnxPredictFn(self.path, self.sidecar["input"]["name"], self.outputs, device)
        return TorchScriptPredictFn(self.path, self.outputs, device)

    def tags(self) -> dict[str, str]:
        """GeoTIFF metadata tags naming the model and where it came from."""
        return {
            "FLOODLAB_MODEL": self.path.name,
            "FLOODLAB_RUN": str(self.sidecar["run"]),
            "FLOODLAB_SPEC_HASH": str(self.sidecar.get("spec_hash", "")),
        }
