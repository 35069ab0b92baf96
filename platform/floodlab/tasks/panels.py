"""Drawing helpers for TensorBoard image panels: composites, masks, errors, grids, histograms.

Every helper takes numpy arrays for one sample and returns an (H, W, 3) float image in
[0, 1]; `grid` assembles them into the (H, W, 3) uint8 panel TensorBoard receives.
Colours: water/cloud blue, background dark grey, invalid (excluded) pixels magenta,
false positives red, false negatives orange.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAGENTA = (1.0, 0.0, 1.0)  # excluded (invalid) pixels
POSITIVE = (0.12, 0.47, 0.95)  # water / cloud
BACKGROUND = (0.15, 0.15, 0.15)  # dry land / clear sky
FALSE_POSITIVE = (0.9, 0.1, 0.1)
FALSE_NEGATIVE = (1.0, 0.6, 0.0)
VALID_COLOUR = (1.0, 1.0, 1.0)


def _paint(
    shape: tuple[int, int], layers: Sequence[tuple[np.ndarray, tuple[float, float, float]]]
) -> np.ndarray:
    """Paint boolean layers in order (later layers on top) on a black (H, W, 3) canvas."""
    out = np.zeros((*shape, 3), dtype=np.float32)
    for where, colour in layers:
        out[where] = colour
    return out


def stretch(
    image: np.ndarray, lo: float = 2.0, hi: float = 98.0, ref: np.ndarray | None = None
) -> np.ndarray:
    """Per-channel percentile stretch of a (C, H, W) image to (H, W, C) in [0, 1].

    Args:
        image: (C, H, W) values in any unit; NaNs are drawn black.
        lo: lower percentile mapped to 0.
        hi: upper percentile mapped to 1.
        ref: (C, H, W) image whose percentiles are used instead (so a prediction and its
            target are drawn on the same scale).
    """
    src = image if ref is None else ref
    out = np.zeros((*image.shape[1:], image.shape[0]), dtype=np.float32)
    for c in range(image.shape[0]):
        finite = src[c][np.isfinite(src[c])]
        if finite.size == 0:
            continue
        a, b = np.percentile(finite, [lo, hi])
        scaled = (image[c] - a) / max(b - a, 1e-6)
        out[..., c] = np.nan_to_num(np.clip(scaled, 0.0, 1.0), nan=0.0)
    return out


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, C) with C in {1, 2, 3, ...} -> (H, W, 3): grey for 1, zero-padded for 2."""
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    if image.shape[-1] == 2:
        return np.concatenate([image, np.zeros_like(image[..., :1])], axis=-1)
    return image[..., :3]


def input_composite(image: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """False-colour composite of a model input (C, H, W) -> (H, W, 3) in [0, 1].

    VV + VH: red VV, green VH, blue VV/VH (the ratio in dB is the difference VV - VH), the
    usual dual-pol composite; RGB optical bands: true colour; one band: grey; otherwise the
    first three channels (e.g. VV, RATIO, MAGNITUDE of the ResUNet inputs).
    """
    names = list(bands)
    if "VV" in names and "VH" in names:
        vv, vh = image[names.index("VV")], image[names.index("VH")]
        return stretch(np.stack([vv, vh, vv - vh]))
    if all(b in names for b in ("B4", "B3", "B2")):
        return optical_composite(image, names)
    return as_rgb(stretch(image[:3]))


def optical_composite(
    image: np.ndarray, bands: Sequence[str], ref: np.ndarray | None = None
) -> np.ndarray:
    """Composite of an optical image (C, H, W) -> (H, W, 3) in [0, 1].

    True colour (B4, B3, B2) when present, else colour infrared (B8, B4, B3), else the
    bands in their given order (e.g. B8, B11, B5 as red, green, blue). `ref` (same bands)
    fixes the stretch, so fake and real images share one scale.
    """
    names = list(bands)
    for choice in (("B4", "B3", "B2"), ("B8", "B4", "B3")):
        if all(b in names for b in choice):
            idx = [names.index(b) for b in choice]
            break
    else:
        idx = list(range(min(3, len(names))))
    return as_rgb(stretch(image[idx], ref=None if ref is None else ref[idx]))


def label_panel(mask: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """A {0, 1} (H, W) mask: positive blue, background grey, invalid magenta."""
    positive = mask > 0.5
    layers = [(~positive, BACKGROUND), (positive, POSITIVE)]
    if valid is not None:
        layers.append((~valid.astype(bool), MAGENTA))
    return _paint(mask.shape, layers)


def validity_panel(valid: np.ndarray) -> np.ndarray:
    """The validity mask: valid white, excluded magenta."""
    v = valid.astype(bool)
    return _paint(v.shape, [(v, VALID_COLOUR), (~v, MAGENTA)])


def probability_panel(prob: np.ndarray) -> np.ndarray:
    """Probabilities (H, W) in [0, 1] through the perceptually uniform 'viridis' colormap."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    return np.asarray(cmap(np.clip(np.nan_to_num(prob), 0.0, 1.0))[..., :3], dtype=np.float32)


def error_panel(pred: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Agreement map: hits blue, correct background grey, false alarms red, misses orange,
    excluded pixels magenta."""
    p, t = pred.astype(bool), truth > 0.5
    layers = [
        (~p & ~t, BACKGROUND),
        (p & t, POSITIVE),
        (p & ~t, FALSE_POSITIVE),
        (~p & t, FALSE_NEGATIVE),
    ]
    if valid is not None:
        layers.append((~valid.astype(bool), MAGENTA))
    return _paint(p.shape, layers)


def grid(rows: Sequence[Sequence[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Tile (H, W, 3) float images in rows (one row per sample) into one uint8 panel.

    Images of a different size than the first are nearest-neighbour resized to it.
    """
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    out = np.ones((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img.shape[:2] != (h, w):
                yi = np.arange(h) * img.shape[0] // h
                xi = np.arange(w) * img.shape[1] // w
                img = img[yi][:, xi]
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y : y + h, x : x + w] = img
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def histogram_panel(
    fake: np.ndarray,
    real: np.ndarray,
    bands: Sequence[str],
    bins: int = 64,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> np.ndarray:
    """Per-band histograms of generated vs real values, drawn with matplotlib (Agg).

    Args:
        fake: (C, N) generated values per band.
        real: (C, N) real values per band.
        bands: band names for the subplot titles.
        bins: histogram bins.
        value_range: the value range shown.

    Returns:
        (H, W, 3) uint8 image of the figure.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(bands)
    fig = Figure(figsize=(2.6 * n, 2.2), dpi=80)
    canvas = FigureCanvasAgg(fig)
    for i, band in enumerate(bands):
        ax = fig.add_subplot(1, n, i + 1)
        ax.hist(real[i], bins=bins, range=value_range, alpha=0.6, density=True, label="real")
        ax.hist(fake[i], bins=bins, range=value_range, alpha=0.6, density=True, label="fake")
        ax.set_title(band, fontsize=9)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def segmentation_grid(
    image: np.ndarray,
    bands: Sequence[str],
    mask: np.ndarray,
    valid: np.ndarray | None,
    prob: np.ndarray,
    threshold: float = 0.5,
) -> np.ndarray:
    """One row per sample: input composite, ground truth (invalid magenta), validity,
    probability, masked prediction, errors (hits blue, false alarms red, misses orange).

    Args:
        image: (N, C, H, W) model inputs.
        bands: names of the C input channels.
        mask: (N, H, W) {0, 1} labels.
        valid: (N, H, W) bool validity, or None when every pixel is valid.
        prob: (N, H, W) predicted probabilities.
        threshold: probability above which a pixel is predicted positive.

    Returns:
        (H', W', 3) uint8 panel.
    """
    if valid is None:
        valid = np.ones(mask.shape, dtype=bool)
    rows = []
    for i in range(image.shape[0]):
        pred = prob[i] > threshold
        rows.append(
            [
                input_composite(image[i], bands),
                label_panel(mask[i], valid[i]),
                validity_panel(valid[i]),
                probability_panel(prob[i]),
                label_panel(pred.astype(np.float32), valid[i]),
                error_panel(pred, mask[i], valid[i]),
            ]
        )
    return grid(rows)
