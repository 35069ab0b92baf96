"""Base model for every spec section: strict, described, immutable-by-convention."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# A loss weight: a non-negative float (a negative weight would turn a loss into a reward).
Weight = Annotated[float, Field(ge=0.0)]


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
