"""How much of Ray's own output reaches floodlab's terminal.

Quiet (what `floodlab` does unless ``-v``): Ray's notices, warnings and worker output stay
in Ray's log files (``/tmp/ray/session_latest/logs``); errors still show. Verbose
(``floodlab -v``): Ray's INFO logs and every worker's output are printed as Ray prints them.

Where each message comes from (Ray 2.60), and what quiets it:

* "Token authentication is enabled for this Ray cluster..." and Ray's other notices:
  Python loggers under ``ray`` (here ``ray._private.authentication.
  authentication_token_setup``, WARNING, when `ray.init` starts a new local Ray). Quiet
  sets the ``ray`` logger to ERROR; token authentication itself stays on. Importing ray
  sets that logger back to INFO, so `ray_imported` sets it again before `ray.init`.
* "(raylet) WARNING: N PYTHON worker processes have been started on node ... which is Kx
  the maximum expected startup concurrency (C)": the raylet's worker pool (C++) publishes
  it to the driver's error channel at every multiple K >= 4 of C, where Ray sets C to
  ``min(physical cores, num_cpus)``; the driver prints that channel whatever
  ``log_to_driver`` says. floodlab's local Ray oversubscribes logical CPUs on purpose
  (`floodlab.cluster.ray_env.local_num_cpus`), so a sweep on 2 cores passed 8 workers at
  once. The local Ray is started with the raylet's ``worker_maximum_startup_concurrency``
  at `startup_concurrency` (its logical CPUs, at most 4 per core): the warning then means
  what Ray meant it to, in quiet and verbose mode alike. A cluster floodlab merely
  connects to keeps its own setting.
* "(pid=..., TrainController ...)" lines, "(raylet)" worker logs: workers' stdout/stderr,
  forwarded to the driver only with ``ray.init(log_to_driver=True)`` (`log_to_driver`).
* "... [repeated 2x across cluster] (Ray deduplicates logs by default...)": the driver's
  log deduplication; quiet sets ``RAY_DEDUP_LOGS=0``.
* Tune's trial-status tables: ``RAY_AIR_NEW_OUTPUT=0`` and ``verbose=0``
  (`floodlab.tune.tuner.run_sweep` sets both); Ray Train V2's migration notices:
  ``RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS=0``.
* Python ``warnings`` raised in Ray's modules (deprecations): ignored when quiet.

MLflow's own INFO lines ("Creating initial MLflow database tables...") and alembic's are
quieted the same way (loggers ``mlflow`` and ``alembic`` at WARNING).
"""

from __future__ import annotations

import logging
import os
import warnings

_verbose = False

# Environment Ray reads when it starts or prints (set only where the user has not).
QUIET_ENV = {
    "RAY_DEDUP_LOGS": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
}
# Loggers of libraries that print notices at INFO/WARNING, and the level quiet leaves them.
QUIET_LOGGERS = {"ray": logging.ERROR, "mlflow": logging.WARNING, "alembic": logging.WARNING}


def set_ray_output(verbose: bool) -> None:
    """Quiet Ray (and MLflow) in this process, or let them speak (`verbose`).

    Call it before Ray starts (the environment variables are read then); the CLI calls it
    once per command from the ``-v/--verbose`` option.
    """
    global _verbose
    _verbose = verbose
    if verbose:
        logging.getLogger("ray").setLevel(logging.INFO)
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")


def ray_imported() -> None:
    """Quiet Ray's loggers again once ray is imported (its import resets the ``ray``
    logger to INFO); call it between ``import ray`` and ``ray.init``."""
    if not _verbose:
        for name, level in QUIET_LOGGERS.items():
            logging.getLogger(name).setLevel(level)


def log_to_driver() -> bool:
    """Whether Ray forwards its workers' output to this process (only when verbose)."""
    return _verbose


def startup_concurrency(num_cpus: int) -> int:
    """The raylet's worker start-up concurrency for floodlab's local Ray of `num_cpus`
    logical CPUs: all of them, but at most 4 per physical core."""
    return max(1, min(num_cpus, 4 * (os.cpu_count() or 1)))
