"""floodlab: Ray-distributed experiments and sweeps for Earth-observation flood mapping."""

__version__ = "0.1.0"
