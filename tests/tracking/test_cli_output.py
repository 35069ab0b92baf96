"""The quiet CLI: floodlab's own warnings show, Ray's notices only with -v."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from floodlab.cli import main
from floodlab.cli.output import TqdmHandler, configure_output
from floodlab.cluster import ray_output
from floodlab.cluster.ray_output import QUIET_ENV, QUIET_LOGGERS, log_to_driver

NAMES = ["floodlab", *QUIET_LOGGERS]


@pytest.fixture(autouse=True)
def restore_output(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what configure_output does to this process: loggers, environment, warnings."""
    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)  # restored to its old value afterwards
    saved = {n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers)) for n in NAMES}
    verbose = ray_output._verbose
    with warnings.catch_warnings():
        yield
    for name, (level, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
    ray_output._verbose = verbose


def test_quiet_hides_ray_warnings_but_shows_floodlabs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_output(False)
    logging.getLogger("ray._private.authentication").warning("Token authentication is enabled")
    logging.getLogger("ray.tune").info("a Tune notice")
    logging.getLogger("mlflow.store.db.utils").info("Creating initial MLflow database tables...")
    logging.getLogger("floodlab.train.driver").warning("the store is small")
    logging.getLogger("floodlab.train.driver").info("sweep directory /x")
    logging.getLogger("ray.train").error("a Ray error still shows")

    err = capsys.readouterr().err
    assert "warning: the store is small" in err
    assert "sweep directory" not in err  # floodlab's INFO only with -v
    messages = [r.getMessage() for r in caplog.records]
    assert "Token authentication is enabled" not in messages
    assert "a Tune notice" not in messages
    assert not any("MLflow database" in m for m in messages)
    assert "a Ray error still shows" in messages
    assert not log_to_driver()
    for name, value in QUIET_ENV.items():
        assert os.environ[name] == value


def test_verbose_lets_ray_speak_and_shows_floodlab_info(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_output(True)
    logging.getLogger("ray._private.authentication").warning("Token authentication is enabled")
    logging.getLogger("floodlab.tune.tuner").info("sweep directory /x")

    assert "Token authentication is enabled" in [r.getMessage() for r in caplog.records]
    assert "INFO floodlab.tune.tuner: sweep directory /x" in capsys.readouterr().err
    assert log_to_driver()


def test_quiet_ignores_python_warnings_raised_in_ray_modules() -> None:
    warnings.simplefilter("always")
    configure_output(False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("old API", DeprecationWarning, "ray/x.py", 1, module="ray.train.x")
        warnings.warn_explicit("ours", UserWarning, "floodlab/x.py", 1, module="floodlab.x")
        warnings.warn_explicit("raylike", UserWarning, "rayon/x.py", 1, module="rayon")
    assert [str(w.message) for w in caught] == ["ours", "raylike"]


def test_configuring_twice_leaves_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_output(False)
    configure_output(False)
    assert sum(isinstance(h, TqdmHandler) for h in logging.getLogger("floodlab").handlers) == 1
    logging.getLogger("floodlab.x").warning("once")
    assert capsys.readouterr().err.count("warning: once") == 1


@pytest.mark.parametrize(("flag", "ray_level"), [([], logging.ERROR), (["-v"], logging.INFO)])
def test_the_cli_flag_sets_ray_loudness(flag: list[str], ray_level: int, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [*flag, "validate", str(tmp_path / "missing.yaml")])
    assert result.exit_code != 0  # the command itself fails; the output is configured first
    assert logging.getLogger("ray").level == ray_level
    assert log_to_driver() is bool(flag)
