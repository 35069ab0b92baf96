"""What a `floodlab` command shows besides its results: log lines, and how loud Ray is.

Without ``-v``: floodlab's own warnings (``warning: ...``) and errors, progress bars and
results; Ray's notices, warnings and worker output are hidden
(`floodlab.cluster.ray_output`). With ``-v``: floodlab's INFO logs too, and Ray's logs
and worker output as Ray prints them. Log lines are written through tqdm, so they never
tear a progress bar.
"""

from __future__ import annotations

import logging
import sys

from floodlab.cluster.ray_output import set_ray_output


class TqdmHandler(logging.Handler):
    """Writes log records to stderr above any running tqdm bar."""

    def emit(self, record: logging.LogRecord) -> None:
        """Print one formatted record with `tqdm.write`."""
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def configure_output(verbose: bool) -> None:
    """Set up floodlab's log lines and Ray's loudness for one command.

    Args:
        verbose: ``floodlab -v``: INFO logs of floodlab and Ray, and Ray's worker output.
    """
    set_ray_output(verbose)
    logger = logging.getLogger("floodlab")
    for handler in list(logger.handlers):
        if isinstance(handler, TqdmHandler):
            logger.removeHandler(handler)
    handler = TqdmHandler(logging.INFO if verbose else logging.WARNING)
    if verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.setLevel(logging.INFO)
    else:
        handler.setFormatter(_LevelPrefix())
    # Records still propagate: a host application's (or a test's) own handlers see them,
    # and with none configured this handler replaces Python's bare last-resort output.
    logger.addHandler(handler)


class _LevelPrefix(logging.Formatter):
    """``warning: <message>`` / ``error: <message>`` (the CLI's own wording)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"
