"""User-facing errors: each names the file or field at fault and the fix; the CLI exits 2."""

from __future__ import annotations


class FloodlabError(Exception):
    """An error caused by input the user can fix; the CLI prints it without a traceback."""


class SpecError(FloodlabError):
    """An experiment spec that does not load or validate.

    Attributes:
        problems: one ``file: dotted.path: message`` line per problem.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DatasetNotFoundError(FloodlabError, FileNotFoundError):
    """A dataset folder or store is missing; the message says which and how to create it."""


class DataError(FloodlabError):
    """A source file or store is unreadable, inconsistent or corrupt."""


class TrainingError(FloodlabError):
    """Training stopped for a reason the user can act on (NaN loss, missing teacher, ...)."""


class ClusterError(FloodlabError):
    """A Ray cluster is unreachable or refused a job."""
