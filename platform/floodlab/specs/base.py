"""Base model for every spec section: strict, described, immutable-by-convention."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo


class _WeightMarker:
    """Tags a field as a loss-term weight (see `Weight`); pydantic keeps it in the metadata."""

    def __repr__(self) -> str:
        return "Weight"


WEIGHT = _WeightMarker()

# A loss weight: a non-negative float (a negative weight would turn a loss into a reward).
# The `WEIGHT` tag makes the field a loss term: `floodlab.specs.loss.weight_names` lists a
# section's terms from the fields so typed, so the field is the only place a term is named.
Weight = Annotated[float, Field(ge=0.0), WEIGHT]
# A share, probability or relative strength: a float in [0, 1].
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def _local(path: str) -> str:
    from floodlab.io import LOCAL_ONLY, is_uri

    if is_uri(path):
        raise ValueError(f"a URI, not a file system path; {LOCAL_ONLY}")
    return path


# A location floodlab reads and writes with the file system: a URI (s3://...) is refused.
LocalPath = Annotated[str, AfterValidator(_local)]


def _storable(location: str) -> str:
    from urllib.parse import urlsplit

    from pydantic_core import PydanticCustomError

    from floodlab.specs.tracking import SECRET_ERROR
    from floodlab.storage import check_location

    parts = urlsplit(location)
    if parts.username is not None or parts.password is not None:
        # Never echoed back: spec errors of this type leave the value out.
        raise PydanticCustomError(
            SECRET_ERROR,
            "the URL holds credentials, which would be written into every run's spec.yaml; "
            "remove them and let the storage library find its own (for S3: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role)",
        )
    return check_location(location, "location")


# A path or a URL on object storage that fsspec knows (s3://, gs://, abfs://, file://).
StoreLocation = Annotated[str, AfterValidator(_storable)]


def is_weight(field: FieldInfo) -> bool:
    """Whether a pydantic field was declared with the `Weight` type."""
    return any(m is WEIGHT for m in field.metadata)


class StrictModel(BaseModel):
    """Unknown keys are errors; values are validated on assignment too; floats are finite.

    `allow_inf_nan=False` applies to every float a spec holds (learning rates, weights,
    temperatures, thresholds, search bounds): `nan`, `inf` and YAML's `.inf` are refused
    with "Input should be a finite number" rather than reaching the optimiser.
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False
    )
