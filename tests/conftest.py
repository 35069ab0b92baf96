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


S3_BUCKET = "floodlab-test"


def write_untrained_run(root, spec, normalization=None):
    """A run as training leaves it (spec, normalisation of its training split, one
    checkpoint), without training: the seeded initial weights are what is evaluated.

    `normalization` stands in for the training split's parameters, so a run needs no store.
    Returns the `RunDir`.
    """
    import torch

    from floodlab.data.load.dataset import FloodDataset
    from floodlab.specs import with_values
    from floodlab.tasks import build_task
    from floodlab.tracking import RunDir
    from floodlab.tracking.checkpoint import Checkpoint, write_checkpoint
    from floodlab.tracking.checkpoint_dirs import checkpoint_dir_name
    from floodlab.train.state import LoopState

    run = RunDir.create(root, spec.name, "r", spec=spec)
    if normalization is None:
        normalization = FloodDataset(spec.data, spec.data.train_split, train=True).norm
    run.write_normalization(normalization)
    torch.manual_seed(0)
    # A SAR-KD student's teacher is a training-time input, outside its checkpoint.
    task = build_task(with_values(spec, {"distill": None}) if spec.distill else spec)
    state = Checkpoint(
        task=task.state_dict(),
        optimizers={},
        schedulers={},
        scaler={},
        spec_hash=run.spec_hash() or "",
        metrics={},
        loop=LoopState(epoch=1).to_dict(),
    )
    write_checkpoint(
        run.checkpoints_dir / checkpoint_dir_name(1), state, {"epoch": 1, "score": 0.0}
    )
    return run


@pytest.fixture(scope="session")
def untrained_run():
    """`write_untrained_run`: (runs folder, spec[, normalization]) -> run, for tests and
    fixtures of any scope."""
    return write_untrained_run


@pytest.fixture(scope="session")
def s3_server():
    """An S3-protocol server (moto in server mode) on 127.0.0.1 at an ephemeral port for the
    session, holding the bucket `S3_BUCKET`. The standard AWS environment of this process
    points at it (with throwaway credentials) before the session's Ray starts, so every Ray
    worker finds it the way a cluster node finds its object storage: in its own environment.

    Yields:
        The endpoint URL.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in _AWS_ENV}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().mkdir(S3_BUCKET)
    yield endpoint
    s3fs.S3FileSystem.clear_instance_cache()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
)


@pytest.fixture(scope="session")
def ray_session(s3_server):
    """Start one local Ray for the whole test session, as floodlab starts its own (dashboard
    off, every listener on 127.0.0.1), after the S3 server (its workers inherit the
    endpoint)."""
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
