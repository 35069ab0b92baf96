"""The write side of the data layer: raw source -> one complete Zarr store.

`pipeline` runs the chip-parallel conversion (Dask), `chipwrite` encodes and writes one
chip, `splits` assigns train/val/test, `stats` and `finalise` complete the store, and
`prepare` makes sure the store a spec names exists (synthesising raw data if asked).
"""
