"""Data layer: raw source readers, synthetic sources, Zarr conversion, stores and datasets."""
