"""FLoRA: SAR-optical fusion for optical reconstruction and flood segmentation."""

from floodlab.models.flora.attention import WindowCrossAttention
from floodlab.models.flora.decoders import PyramidDecoder
from floodlab.models.flora.encoder import PyramidEncoder, SarEncoder
from floodlab.models.flora.fusion import PRIOR_TOKENS, FiLM, ScaleFusion
from floodlab.models.flora.model import FloraModel, build_flora
from floodlab.models.flora.teacher import OpticalTeacher, teacher_widths

__all__ = [
    "PRIOR_TOKENS",
    "FiLM",
    "FloraModel",
    "OpticalTeacher",
    "PyramidDecoder",
    "PyramidEncoder",
    "SarEncoder",
    "ScaleFusion",
    "WindowCrossAttention",
    "build_flora",
    "teacher_widths",
]
