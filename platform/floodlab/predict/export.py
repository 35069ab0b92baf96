"""`floodlab export`: a run's SAR-only inference graph as an ONNX or TorchScript file.

What is exported is `floodlab.predict.graph.InferenceGraph`: the run's saved
normalisation followed by the network that predicts from the image alone. The file takes
``image`` (B, C, H, W) float32 in the model's input bands and physical units (NaN at
nodata; B, H and W free) and returns ``prob`` (B, 1, H, W), plus ``rgb`` (B, 3, H, W) for
FLoRA. Derived bands (RATIO, MAGNITUDE, VV_DIFF, ...) are inputs, not computed inside: the
sidecar gives their formulas, and `floodlab predict --model` derives them from the scene's
bands exactly as `floodlab predict RUN` does, so both share one windowed path.

Beside the file go its sidecar (``<file>.json``, `sidecar_for`: bands, units,
normalisation, threshold, family, spec hash, run; what `predict --model` reads) and
``model_card.md`` (`floodlab.predict.model_card`). After writing, the file is loaded back
(onnxruntime, or ``torch.jit.load``) and run on an input of another size than the one it
was traced with; its largest difference from the run's model is recorded in the sidecar,
and an export that differs by more than `CHECK_TOLERANCE` is refused.

How dynamic sizes survive tracing: the networks pad their input to a multiple of their
downsampling factor only when needed (a Python branch). The graph is traced on an input
whose sides (`TRACE_HW`) are odd, so the padding branch is the one recorded, with pads
computed from the input's size; for sizes that need none they are zero.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from floodlab import __version__
from floodlab.errors import ExportError
from floodlab.io import atomic_path, atomic_write_text, write_json
from floodlab.predict.exported import (
    FORMATS,
    OnnxPredictFn,
    TorchScriptPredictFn,
    sidecar_path,
)
from floodlab.predict.graph import INPUT, PROB, RGB, InferenceGraph, build_graph, outputs_of
from floodlab.predict.predictor import model_bands
from floodlab.writable import check_output

log = logging.getLogger(__name__)

TRACE_HW = (67, 75)  # odd sides: every network pads them (see the module docstring)
TRACE_BATCH = 2  # a batch of 1 would be specialised to 1
CHECK_SHAPE = (3, 64, 96)  # (B, H, W) of the check after writing: no padding needed
CHECK_TOLERANCE = 1e-3  # largest accepted difference between the file and the run's model
DEFAULT_THRESHOLD = 0.5


@dataclass
class ExportResult:
    """What `export_run` wrote.

    Attributes:
        path: the model file.
        sidecar: its JSON sidecar.
        card: the model card.
        bands: the input bands, in order.
        outputs: the graph's outputs, in order.
        max_abs_diff: the largest difference between the file and the run's model on the
            check input.
    """

    path: Path
    sidecar: Path
    card: Path
    bands: list[str]
    outputs: tuple[str, ...]
    max_abs_diff: float


def export_run(
    ref: str | Path,
    out: str | Path,
    *,
    fmt: str = "onnx",
    root: str | Path = "runs",
    checkpoint: str = "best",
    threshold: float = DEFAULT_THRESHOLD,
    overwrite: bool = False,
) -> ExportResult:
    """Export a run's SAR-only inference graph with its normalisation inside.

    Args:
        ref: the run (directory, ``<experiment>/<run>`` or ``<experiment>/latest``).
        out: the file to write (``.onnx`` or ``.pt`` by convention).
        fmt: "onnx" or "torchscript".
        root: the runs root.
        checkpoint: "best", "latest" or a checkpoint file.
        threshold: the probability from which a pixel is water, recorded in the sidecar.
        overwrite: replace an existing file, sidecar and model card.

    Returns:
        An `ExportResult`.

    Raises:
        ExportError: an unknown format, a family without a mask, or a file that does not
            reproduce the run's model.
        OutputPathError: the outputs cannot be written or exist (without `overwrite`).
        FloodlabError: the run or its checkpoint cannot be loaded.
    """
    from floodlab.predict.model_card import card_path, check_card, trained_card_text
    from floodlab.predict.restore import load_trained
    from floodlab.tracking import RunDir

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt}: choose one of {list(FORMATS)}")
    if not 0.0 <= threshold <= 1.0:
        raise ExportError(f"--threshold: `0 <= threshold <= 1` must hold, but got {threshold}")
    out = Path(out)
    meta, card = sidecar_path(out), card_path(out.parent)
    run_dir = RunDir.open(ref, root=root)  # an unknown run fails before anything is checked
    check_output(out, option="-o/--out", overwrite=overwrite)
    check_output(meta, option="-o/--out (its sidecar)", overwrite=overwrite)
    check_card(card, run_dir, overwrite=overwrite)

    trained = load_trained(run_dir.location, root=root, checkpoint=checkpoint)
    outputs = outputs_of(trained.spec)
    graph = build_graph(trained)
    bands = model_bands(trained.spec)
    coefficients = graph.normalize
    trace_input = example_input(coefficients, TRACE_BATCH, *TRACE_HW, seed=0)
    check_input = example_input(coefficients, *CHECK_SHAPE, seed=1)
    with atomic_path(out, suffix=out.suffix or ".tmp") as tmp:
        log.info("exporting %s as %s to %s", run_dir.where, fmt, out)
        if fmt == "onnx":
            _to_onnx(graph, trace_input, tmp, outputs)
            fn: Any = OnnxPredictFn(tmp, INPUT, outputs, "cpu")
        else:
            _to_torchscript(graph, trace_input, tmp)
            fn = TorchScriptPredictFn(tmp, outputs, "cpu")
        diff = _max_abs_diff(graph, fn, check_input)
        if not diff <= CHECK_TOLERANCE:
            raise ExportError(
                f"the exported {fmt} graph differs from the run's model by {diff:.3g} (more "
                f"than {CHECK_TOLERANCE:g}) on an input of shape {check_input.shape}; nothing "
                "was written. Export the other --format, or report this run's family."
            )
    sidecar = sidecar_for(trained, out, fmt, outputs, threshold, diff, check_input.shape)
    write_json(meta, sidecar)
    report = _latest_report(trained.run, trained.spec.data.test_split)
    text = trained_card_text(trained, _parameters(trained, graph), report, export=sidecar)
    atomic_write_text(card, text)
    return ExportResult(out, meta, card, bands, outputs, diff)


def example_input(
    normalization: Any, batch: int, height: int, width: int, *, seed: int
) -> torch.Tensor:
    """Physical band values that the run's normalisation maps to about N(0, 1), with a
    nodata block: (batch, C, height, width) float32.

    Args:
        normalization: the graph's `SavedNormalization` (its coefficients per band).
        batch: samples.
        height: rows.
        width: columns.
        seed: seed of the values.
    """
    g = torch.Generator().manual_seed(seed)
    c = int(normalization.scale.shape[1])
    z = torch.randn(batch, c, height, width, generator=g)
    # Invert the affine map (per-patch bands: a 0..255 stretch like OMBRIA's).
    x = torch.where(
        normalization.per_patch,
        128.0 + 40.0 * z,
        (z - normalization.offset) / normalization.scale,
    )
    x[:, :, : height // 4, : width // 5] = float("nan")  # nodata in a corner
    return x.contiguous()


@contextlib.contextmanager
def _quiet_exporters() -> Iterator[None]:
    """Silence the exporters' notes on expected behaviour (tracing warnings, optional
    torchvision ops, deprecations inside torch), so the CLI output stays readable."""
    names = ("torch.onnx", "torch.export", "torch._export", "torch.fx.experimental")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _to_onnx(
    graph: InferenceGraph, example: torch.Tensor, path: Path, outputs: tuple[str, ...]
) -> None:
    """Write `graph` as ONNX (torch.export based) with dynamic batch, height and width."""
    import io

    dims = {0: "batch", 2: "height", 3: "width"}
    with _quiet_exporters(), contextlib.redirect_stdout(io.StringIO()):
        try:
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                input_names=[INPUT],
                output_names=list(outputs),
                dynamic_shapes={"image": dims},
                verbose=False,
            )
        except Exception as e:  # the exporters raise many types; name the cause
            raise ExportError(
                f"the ONNX exporter failed on this run's model ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); try --format torchscript"
            ) from e
        assert program is not None
        program.save(str(path))


def _to_torchscript(graph: InferenceGraph, example: torch.Tensor, path: Path) -> None:
    """Write `graph` as TorchScript, traced on `example` (see the module docstring)."""
    with _quiet_exporters(), torch.no_grad():
        traced = torch.jit.trace(graph, (example,), check_trace=False)
    traced.save(str(path))


def _max_abs_diff(graph: InferenceGraph, fn: Any, x: torch.Tensor) -> float:
    """Largest |file - graph| over every output for input `x`."""
    with torch.no_grad():
        expected = [t.numpy() for t in graph(x)]
    got = fn(x.numpy())
    return max(
        float(np.abs(np.asarray(got[k]) - e).max())
        for k, e in zip(fn.outputs, expected, strict=True)
    )


def _parameters(trained: Any, graph: InferenceGraph) -> dict[str, int]:
    """Parameter counts: every trained network, the model network, the exported graph."""
    return {
        "trained": int(trained.task.num_parameters()),
        "model": int(sum(p.numel() for p in trained.task.nets["model"].parameters())),
        "inference": int(sum(p.numel() for p in graph.parameters())),
    }


def _latest_report(run: Any, test_split: str) -> dict[str, Any] | None:
    """The run's evaluation report of its test split, else its newest one, else None."""
    import json

    eval_root = run.path / "eval"
    own = eval_root / test_split / "metrics.json"
    found = [own] if own.is_file() else []
    if not found and eval_root.is_dir():
        found = sorted(eval_root.glob("*/metrics.json"), key=lambda p: p.stat().st_mtime)[-1:]
    if not found:
        return None
    try:
        report = json.loads(found[0].read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) else None


def sidecar_for(
    trained: Any,
    out: Path,
    fmt: str,
    outputs: tuple[str, ...],
    threshold: float,
    diff: float,
    check_shape: tuple[int, ...],
) -> dict[str, Any]:
    """The JSON sidecar of an exported model: what it takes and returns and where it came
    from (read by `floodlab.predict.exported.ExportedModel`)."""
    from floodlab.data.load.normalize import saved_coefficients
    from floodlab.predict.card_sections import band_unit, derived_formulas, training_sar_units

    spec = trained.spec
    bands = model_bands(spec)
    sar_units = training_sar_units(spec)
    c = len(bands)
    shapes = {
        PROB: ["batch", 1, "height", "width"],
        RGB: ["batch", 3, "height", "width"],
    }
    meanings = {
        PROB: "probability of "
        + ("cloud" if spec.data.label == "cloud" else "flood water")
        + " in [0, 1]",
        RGB: "FLoRA's SAR-to-RGB translation (B4, B3, B2) in [0, 1]",
    }
    return {
        "format": fmt,
        "file": out.name,
        "floodlab_version": __version__,
        "family": str(spec.model.kind),
        "arch": getattr(spec.model, "arch", None),
        "label": spec.data.label,
        "run": trained.run.where,
        "experiment": spec.name,
        "checkpoint": str(trained.checkpoint),
        "epoch": trained.epoch,
        "spec_hash": trained.run.spec_hash(),
        "input": {
            "name": INPUT,
            "shape": ["batch", c, "height", "width"],
            "dtype": "float32",
            "bands": bands,
            "units": {b: band_unit(b, sar_units) for b in bands},
            "sar_units": sar_units,
            "derived": derived_formulas(bands),
            "nodata": "NaN (any non-finite value); such pixels become 0 after "
            "normalisation, as in training",
        },
        "normalization": {
            "inside_graph": True,
            "mode": trained.normalization.get("mode"),
            "bands": bands,
            "coefficients": saved_coefficients(trained.normalization, "image", bands),
            "rule": "per band clip(x, lo, hi) * scale + offset (lo/hi null: no clip); "
            "per_patch: (x - mean) / std over the sample's own finite pixels (std < 1e-6: "
            "centred only); then nodata -> 0",
        },
        "outputs": {k: {"shape": shapes[k], "meaning": meanings[k]} for k in outputs},
        "threshold": threshold,
        "check": {"input_shape": list(check_shape), "max_abs_diff": diff},
    }
