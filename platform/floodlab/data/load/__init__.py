"""The read side of the data layer: a complete Zarr store -> training and evaluation samples.

`store` opens a store read-only (bands, splits, statistics, windows), `dataset` cuts
patches into sample dicts, `normalize` and `transforms` prepare them, `summary` describes
a store for `floodlab inspect`.
"""
