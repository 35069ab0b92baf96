"""The model registry: `kind` -> builder, and `build_model(spec.model)`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from floodlab.models.blocks import num_parameters
from floodlab.models.weights import load_weights

logger = logging.getLogger(__name__)

Builder = Callable[[Any], nn.Module]
B = TypeVar("B", bound=Builder)

# kind -> builder(spec_model) -> nn.Module; filled by @register_model in each family module.
MODELS: dict[str, Builder] = {}


def register_model(kind: str) -> Callable[[B], B]:
    """Register a builder under a model spec's ``kind``.

    Args:
        kind: the spec discriminator value (``"flora"``, ``"resunet"``, ...).

    Returns:
        A decorator that stores the builder in `MODELS` and returns it unchanged.

    Raises:
        ValueError: ``kind`` is already registered.
    """

    def decorator(builder: B) -> B:
        if kind in MODELS:
            raise ValueError(f"model kind '{kind}' is already registered by {MODELS[kind]}")
        MODELS[kind] = builder
        return builder

    return decorator


def build_model(spec_model: Any) -> nn.Module:
    """Build the network described by a model spec (``spec.model``).

    Builders read the spec only (no data, no downloads). When the spec names a local
    ``weights`` file it is loaded strictly after construction (`load_weights`).

    Args:
        spec_model: one of the model spec classes of `floodlab.specs.model`.

    Returns:
        The model, in training mode.

    Raises:
        KeyError: ``spec_model.kind`` is not registered.
        floodlab.errors.DataError: the weights file is missing or does not fit.
    """
    kind = getattr(spec_model, "kind", None)
    if kind not in MODELS:
        raise KeyError(f"Unknown model '{kind}'; available: {sorted(MODELS)}")
    model = MODELS[kind](spec_model)
    weights = getattr(spec_model, "weights", None)
    if weights:
        load_weights(model, weights, field="model.weights")
    logger.debug("built %s (%s): %d parameters", kind, type(model).__name__, num_parameters(model))
    return model
