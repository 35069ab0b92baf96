"""Keys of the sample dicts that datasets return and tasks consume (defined once, here).

Shapes are per sample; a DataLoader adds the batch dimension in front.
"""

from __future__ import annotations

IMAGE = "image"  # (C, H, W) float32: normalised model input (SAR, engineered SAR, or optical)
MASK = "mask"  # (H, W) float32 in {0, 1}: flood water / cloud; 0 where invalid
VALID = "valid"  # (H, W) bool: True where the label is valid (missing data -> False)
OPTICAL = "optical"  # (C_opt, H, W) float32: normalised optical prior (FLoRA teacher input)
TARGET = "target"  # (C_t, H, W) float32: translation target ([0, 1], or [-1, 1] for CycleGAN)
SAR_DB = "sar_db"  # (H, W) float32: raw VV in dB, NaN at nodata (Otsu baseline, panels)
ID = "id"  # str: chip id
BAND = "band"  # str: the band of a band-agnostic single-channel sample
