"""Shared fixtures: one session-scoped local Ray for every Ray test, seeded torch."""

from __future__ import annotations

import os

import pytest

# Keep each test process light on the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# A busy CI machine can start Ray's metrics agent slowly; wait rather than fail the node.
os.environ.setdefault("RAY_agent_register_timeout_ms", "600000")

# Logical CPUs for the test Ray: more than the 2 physical cores, because a Tune trial that
# drives a Ray Train run holds one CPU for the trial actor plus one per training worker
# (and the Train controller); with num_cpus=2 a 2-trial sweep deadlocks waiting for CPUs.
# The whole session shares this one Ray, and a sweep interrupted on purpose (resume tests)
# can leave a Train controller holding its reservation for a while, so later tests get
# generous headroom; logical CPUs cost nothing.
RAY_TEST_CPUS = 32


@pytest.fixture(scope="session")
def ray_session():
    """Start one local Ray for the whole test session, as floodlab starts its own (dashboard
    off, every listener on 127.0.0.1)."""
    import ray

    from floodlab.cluster.ray_env import start_local_ray

    if not ray.is_initialized():
        start_local_ray(num_cpus=RAY_TEST_CPUS, env_vars={"OMP_NUM_THREADS": "1"})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_s1f11_store(tmp_path_factory):
    """A converted synthetic Sen1Floods11 store shared by the session: 24 hand chips of 64 px
    (plus 12 weak chips), official splits, derived RATIO, MAGNITUDE, NDVI, NDWI."""
    from floodlab.data.convert.pipeline import convert
    from floodlab.data.synth import write_synthetic

    base = tmp_path_factory.mktemp("tiny_s1f11")
    root = write_synthetic("sen1floods11", base / "raw", chips=24, size=64, seed=0)
    return convert(
        "sen1floods11",
        root,
        base / "sen1floods11.zarr",
        derived=("RATIO", "MAGNITUDE", "NDVI", "NDWI"),
        reader_options={"labels": ("hand", "weak")},
    )
