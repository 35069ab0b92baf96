"""The sweep-directory layout: the sweep spec, one run directory per trial, Ray Tune's state.

One sweep lives in ``<root>/<experiment>/sweep-<YYYYmmdd-HHMMSS>/``, beside the
experiment's runs::

    spec.yaml        the sweep spec (a resume checks it is unchanged)
    trials/<id>/     each trial's run directory (a `RunDir` named by Tune's trial id)
    tune/            Ray Tune's experiment state (what `floodlab tune --resume` restores)

plus the result files `floodlab.tune.results` writes. ``<root>/<experiment>/latest-sweep``
points at the sweep created last: a sweep is its experiment's latest from the moment it
exists, so `floodlab tune --resume` continues the sweep that was interrupted even before
its first trial finished, and `floodlab trials <experiment>/latest` shows it (saying so
when no trial has finished yet). This module imports no torch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from floodlab.errors import FloodlabError
from floodlab.io import atomic_write_text
from floodlab.storage import is_remote, join
from floodlab.tracking.folder import ExperimentFolder, Subpath, _child, check_root
from floodlab.tracking.rundir import RunDir

if TYPE_CHECKING:
    from floodlab.specs import ExperimentSpec

SWEEP_PREFIX = "sweep-"
SWEEP_SPEC = "spec.yaml"
TRIALS_DIR = "trials"
TUNE_DIR = "tune"
TUNE_STATE = "tuner.pkl"  # inside TUNE_DIR, once Tune has started


class SweepDir(ExperimentFolder):
    """One sweep directory.

    Attributes:
        path: the sweep directory, ``<root>/<experiment>/sweep-<id>``.
        name: its name, ``sweep-<id>``.
        experiment: the experiment name (the parent folder).
    """

    LINK = "latest-sweep"
    KIND = "sweep"
    # On object storage each trial is a run of its own (pulled when needed), and Tune's
    # state is read by Tune itself from the sweep's URL.
    REMOTE_ONLY = (TRIALS_DIR, TUNE_DIR)

    @classmethod
    def create(cls, root: str | Path, experiment: str, spec: ExperimentSpec) -> SweepDir:
        """Create a new sweep directory holding `spec`; it becomes the experiment's latest.

        Args:
            root: the runs root (``logging.root``).
            experiment: the experiment name.
            spec: the sweep spec, written to ``spec.yaml``.
        """
        from floodlab.specs import dump_spec

        sweep = cls.make(root, experiment, None, f"{SWEEP_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}")
        atomic_write_text(sweep.spec_path, dump_spec(spec))
        sweep.push()  # on object storage: the spec is there before the link names the sweep
        sweep.mark_latest()
        return sweep

    @classmethod
    def open(cls, ref: str | Path, root: str | Path = "runs") -> SweepDir:
        """Find an existing sweep.

        Args:
            ref: a sweep directory, ``<experiment>/latest``, ``<experiment>/sweep-<id>``,
                ``<experiment>/<id>`` or just ``<experiment>`` (its latest sweep).
            root: the runs root for ``<experiment>/...`` references.

        Raises:
            FloodlabError: when nothing matches; the message lists the sweeps found.
        """
        found = cls.find(ref, root)
        if found is not None:
            return found
        parts = [p for p in str(ref).strip("/").split("/") if p]
        base = check_root(root)
        exp_dir = _child(base, parts[0]) if parts and not is_remote(ref) else base
        sweeps = cls.in_experiment(exp_dir) if len(parts) in (1, 2) else []
        exp_name = str(exp_dir).rstrip("/").rsplit("/", 1)[-1]
        names = ", ".join(f"{exp_name}/{d}" for d in sweeps)
        listing = f"sweeps found: {names}" if sweeps else f"no sweeps under {exp_dir}/"
        raise FloodlabError(
            f"sweep {str(ref)!r}: not found (give a sweep directory, <experiment>/latest or "
            f"<experiment>/sweep-<id>); {listing}. Start one with `floodlab tune <spec>`."
        )

    @classmethod
    def is_folder(cls, path: str | Path) -> bool:
        """A sweep directory: named ``sweep-<id>``, holding its spec."""
        name = str(path).rstrip("/").rsplit("/", 1)[-1]
        return name.startswith(SWEEP_PREFIX) and super().is_folder(path)

    @classmethod
    def names_for(cls, name: str) -> tuple[str, ...]:
        """``<experiment>/<id>`` may leave out the ``sweep-`` prefix."""
        return (name, SWEEP_PREFIX + name)

    # -- paths ----------------------------------------------------------------------------
    trials_dir = Subpath(TRIALS_DIR, "Where the trials' run directories live.")
    tune_dir = Subpath(
        TUNE_DIR, "Ray Tune's experiment state (its `storage_path` is the sweep directory)."
    )

    def trial(self, trial_id: str) -> RunDir:
        """The run directory of one trial, ``trials/<trial_id>/`` (it may not exist yet)."""
        if self.home is not None:
            return RunDir(join(self.home.url, TRIALS_DIR, trial_id))
        return RunDir(self.trials_dir / trial_id)

    def has_tune_state(self) -> bool:
        """Whether Tune saved its state here (the sweep can be resumed)."""
        if self.home is not None:
            from floodlab.storage import exists

            return exists(join(self.home.url, TUNE_DIR, TUNE_STATE))
        return (self.tune_dir / TUNE_STATE).is_file()

    def pull_trials(self, trial_ids: list[str]) -> None:
        """Refresh the working copies of these trials from the sweep's URL (their ranks 0
        may have run on other nodes); no-op for a local sweep."""
        if self.home is not None:
            for trial_id in trial_ids:
                self.trial(trial_id).pull()
