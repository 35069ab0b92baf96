"""Base model for every spec section: strict, described, immutable-by-convention."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A loss weight: a non-negative float (a negative weight would turn a loss into a reward).
Weight = Annotated[float, Field(ge=0.0)]


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment too; floats are finite.

    `allow_inf_nan=False` applies to every float a spec holds (learning rates, weights,
    temperatures, thresholds, search bounds): `nan`, `inf` and YAML's `.inf` are refused
    with "Input should be a finite number" rather than reaching the optimiser.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )
