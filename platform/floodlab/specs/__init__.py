"""Experiment specs: pydantic models, YAML load/override/dump, hashing. Imports no torch."""

from floodlab.specs.data import AugmentSpec, DataSpec, SynthSpec
from floodlab.specs.experiment import ExperimentSpec, LoggingSpec
from floodlab.specs.io import (
    apply_overrides,
    dump_spec,
    json_schema,
    load_spec,
    parse_override,
    read_yaml,
    spec_hash,
    spec_to_dict,
    validate_data,
    with_values,
)
from floodlab.specs.loss import LossSpec
from floodlab.specs.model import (
    MODEL_KINDS,
    CloudUNetSpec,
    CycleGANSpec,
    FloraSpec,
    FusionSpec,
    ModelSpec,
    ResUNetSpec,
    SarKDSpec,
)
from floodlab.specs.tracking import MlflowSpec
from floodlab.specs.train import (
    DistillSpec,
    EarlyStoppingSpec,
    OptimSpec,
    ScheduleSpec,
    TeacherRef,
    TrainerSpec,
)
from floodlab.specs.tune import ObjectiveSpec, TuneSchedulerSpec, TuneSpec

__all__ = [
    "MODEL_KINDS",
    "AugmentSpec",
    "CloudUNetSpec",
    "CycleGANSpec",
    "DataSpec",
    "DistillSpec",
    "EarlyStoppingSpec",
    "ExperimentSpec",
    "FloraSpec",
    "FusionSpec",
    "LoggingSpec",
    "LossSpec",
    "MlflowSpec",
    "ModelSpec",
    "ObjectiveSpec",
    "OptimSpec",
    "ResUNetSpec",
    "SarKDSpec",
    "ScheduleSpec",
    "SynthSpec",
    "TeacherRef",
    "TrainerSpec",
    "TuneSchedulerSpec",
    "TuneSpec",
    "apply_overrides",
    "dump_spec",
    "json_schema",
    "load_spec",
    "parse_override",
    "read_yaml",
    "spec_hash",
    "spec_to_dict",
    "validate_data",
    "with_values",
]
