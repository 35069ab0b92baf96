"""Load local weights files into models and encoders (nothing is ever downloaded)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from floodlab.errors import DataError

logger = logging.getLogger(__name__)

# How many mismatching keys an error message lists before "...".
_MAX_KEYS_SHOWN = 5


def load_weights(
    module: nn.Module,
    path: str | Path,
    *,
    field: str = "model.weights",
    input_conv: str | None = None,
) -> nn.Module:
    """Load a local weights file into ``module`` strictly (every key must match).

    Accepted file contents (read with ``torch.load(weights_only=True)``):

    * a bare ``state_dict`` (parameter name -> tensor);
    * a floodlab checkpoint ``{"task": {"model": state_dict, ...}, ...}``; when the task
      holds several networks named after ``module``'s children (CycleGAN's ``g_ab``,
      ``g_ba``, ``d_a``, ``d_b``) they are merged back into one state_dict;
    * ``{"state_dict": state_dict}`` or ``{"model": state_dict}``.

    A ``module.`` prefix left by DistributedDataParallel is stripped.

    Args:
        module: the network to load into (modified in place).
        path: local file path.
        field: the spec field that named the file, quoted in error messages.
        input_conv: state_dict key of the first conv's weight. When the file's tensor there
            has a different number of input channels than ``module`` (e.g. RGB ImageNet
            weights into a 1-channel SAR encoder), it is adapted as in
            segmentation_models.pytorch: summed over channels for 1 input channel,
            otherwise cycled over the new channels and rescaled by ``old / new``.

    Returns:
        ``module``, for chaining.

    Raises:
        DataError: the file is missing or unreadable, or its keys or shapes do not match
            ``module`` (the message names the file and the first mismatching keys).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"{field}: weights file '{path}' does not exist; give the path of a local "
            f"state_dict or floodlab checkpoint, or remove `{field}` to start from random "
            "initialisation (nothing is downloaded)."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt/unsafe files
        raise DataError(
            f"{field}: cannot read weights file '{path}' ({type(exc).__name__}: {exc}); "
            "save it with torch.save(model.state_dict(), path)."
        ) from exc
    state = _extract_state_dict(obj, module, path, field)
    target = module.state_dict()
    if input_conv is not None and input_conv in state and input_conv in target:
        state[input_conv] = adapt_input_conv(state[input_conv], target[input_conv].shape[1])

    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        raise DataError(
            f"{field}: weights file '{path}' does not fit {type(module).__name__}: "
            f"missing keys {_show(missing)}, unexpected keys {_show(unexpected)}; was it saved "
            "from a model built with the same spec (kind, arch, widths, channels)?"
        )
    wrong = [
        f"{k} (file {tuple(v.shape)}, model {tuple(target[k].shape)})"
        for k, v in state.items()
        if tuple(v.shape) != tuple(target[k].shape)
    ]
    if wrong:
        raise DataError(
            f"{field}: weights file '{path}' has tensors of the wrong shape: {_show(wrong)}; "
            "build the model with the spec it was trained with (widths, channels, bands)."
        )
    module.load_state_dict(state, strict=True)
    logger.info("loaded %d tensors from %s into %s", len(state), path, type(module).__name__)
    return module


def load_encoder_weights(encoder: nn.Module, path: str | Path) -> nn.Module:
    """Load ``model.encoder_weights`` into an encoder, adapting its stem to the input channels.

    The encoder class names the state_dict key of its first conv's weight in ``INPUT_CONV``
    (see `load_weights`, ``input_conv``).
    """
    input_conv = getattr(encoder, "INPUT_CONV", None)
    return load_weights(encoder, path, field="model.encoder_weights", input_conv=input_conv)


def adapt_input_conv(weight: Tensor, in_channels: int) -> Tensor:
    """Adapt a first-conv weight (O, I, k, k) to ``in_channels`` inputs.

    One channel: sum over the old inputs (a grey image through RGB filters). Otherwise the
    old input filters are cycled and scaled by ``I / in_channels`` to keep activations'
    magnitude.
    """
    old = weight.shape[1]
    if old == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    idx = torch.arange(in_channels) % old
    return weight[:, idx] * (old / in_channels)


def _extract_state_dict(obj: Any, module: nn.Module, path: Path, field: str) -> dict[str, Tensor]:
    """Find the state_dict inside what `torch.load` returned."""
    if isinstance(obj, Mapping) and "task" in obj and isinstance(obj["task"], Mapping):
        task = obj["task"]
        if "model" in task and isinstance(task["model"], Mapping):
            obj = task["model"]
        else:
            # Several networks saved side by side: merge the ones that are children of module.
            children = {name for name, _ in module.named_children()}
            nets = {k: v for k, v in task.items() if k in children and isinstance(v, Mapping)}
            if not nets:
                raise DataError(
                    f"{field}: checkpoint '{path}' holds networks {sorted(task)} but none "
                    f"named 'model' or {sorted(children)}; pass the checkpoint of a run "
                    "of the same model family."
                )
            obj = {f"{net}.{k}": v for net, sd in nets.items() for k, v in _strip_ddp(sd).items()}
    elif isinstance(obj, Mapping) and not _is_state_dict(obj):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise DataError(
            f"{field}: '{path}' is not a state_dict or floodlab checkpoint; save it with "
            "torch.save(model.state_dict(), path)."
        )
    return _strip_ddp(obj)


def _strip_ddp(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``module.`` prefix DistributedDataParallel adds to every key."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _is_state_dict(obj: Mapping[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())


def _show(keys: list[str]) -> str:
    if not keys:
        return "[]"
    shown = ", ".join(keys[:_MAX_KEYS_SHOWN])
    more = f", ... ({len(keys)} in all)" if len(keys) > _MAX_KEYS_SHOWN else ""
    return f"[{shown}{more}]"
