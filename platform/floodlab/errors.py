"""User-facing errors: each names the file or field at fault and the fix; the CLI exits 2."""

from __future__ import annotations

import re

# How torch's DataLoader re-raises an error of one of its worker processes: the type is
# kept, the message becomes "Caught <Type> in DataLoader worker process <n>.\nOriginal
# Traceback ...", ending with "<module>.<Type>: <original message>".
_LOADER_WRAPPED = re.compile(
    r"^Caught (\w+) in DataLoader worker process \d+\.\nOriginal Traceback"
)


def _unwrap_loader_message(message: str) -> str:
    """The original message of an error re-raised by a DataLoader worker, else `message`."""
    m = _LOADER_WRAPPED.match(message)
    if m is None:
        return message
    marker = f"{m.group(1)}: "
    at = message.rfind("\n", 0, message.rfind(marker)) + 1
    line = message[at:]
    return line.split(marker, 1)[1].strip() if marker in line else message


class FloodlabError(Exception):
    """An error caused by input the user can fix; the CLI prints it without a traceback.

    Raised inside a DataLoader worker process, it reaches the training process with the
    worker's traceback folded into its message; that is stripped again here, so the user
    sees the one paragraph that was raised.
    """

    def __init__(self, *args: object):
        if len(args) == 1 and isinstance(args[0], str):
            args = (_unwrap_loader_message(args[0]),)
        super().__init__(*args)


class SpecError(FloodlabError):
    """An experiment spec that does not load or validate.

    Attributes:
        problems: one ``file: dotted.path: message`` line per problem.
    """

    def __init__(self, problems: list[str] | str):
        if isinstance(problems, str):  # e.g. re-raised by a DataLoader worker
            problems = [_unwrap_loader_message(problems)]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class DatasetNotFoundError(FloodlabError, FileNotFoundError):
    """A dataset folder or store is missing; the message says which and how to create it."""


class DataError(FloodlabError):
    """A source file or store is unreadable, inconsistent or corrupt."""


class UnitsError(DataError):
    """SAR input whose values cannot be in the units expected (dB) or declared (--units).

    It concerns the whole source, not one bad chip: a conversion stops on it even with
    --skip-bad.
    """


class ReaderOptionError(FloodlabError, ValueError):
    """A source reader option that the reader does not know or cannot use."""


class OutputPathError(FloodlabError):
    """An output path that cannot be written (inside a file, no permission, read-only)."""


class TrainingError(FloodlabError):
    """Training stopped for a reason the user can act on (NaN loss, missing teacher, ...)."""


class ExportError(FloodlabError):
    """A run that cannot be exported, or an exported model that cannot be used as asked."""


class ClusterError(FloodlabError):
    """A Ray cluster is unreachable or refused a job."""
