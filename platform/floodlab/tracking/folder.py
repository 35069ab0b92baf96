"""Named folders of an experiment, ``<root>/<experiment>/<name>/``, and their latest links.

Runs (`floodlab.tracking.rundir.RunDir`) and sweeps (`floodlab.tracking.sweepdir.SweepDir`)
live side by side in one experiment folder. Each kind keeps its own link there to its
latest usable folder (a relative symlink, or a one-line text file on filesystems without
symlinks) and is found the same way: a folder path, ``<experiment>/<name>``,
``<experiment>/latest`` or just ``<experiment>``. This module imports no torch.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self, overload

from floodlab.errors import FloodlabError
from floodlab.io import atomic_write_text

if TYPE_CHECKING:
    from floodlab.specs import ExperimentSpec

SPEC_FILE = "spec.yaml"
LATEST = "latest"  # the word a reference uses: <experiment>/latest
_LINKS: set[str] = {LATEST}  # the link names of every kind (never a folder name)


def check_local(root: str | Path) -> None:
    """Refuse URIs: run and sweep folders need a local or shared (mounted) filesystem.

    Raises:
        FloodlabError: naming `logging.root` and the fix.
    """
    from floodlab.io import local_location

    try:
        local_location(str(root), "logging.root")
    except ValueError as err:
        raise FloodlabError(str(err)) from None


class Subpath:
    """A file or folder of an `ExperimentFolder`'s layout, read as an attribute.

    Declared in the class body, one line per entry of the layout
    (``metrics_path = Subpath("metrics.jsonl", "One record per epoch.")``); reading it on
    a folder gives ``folder.path / name``.
    """

    def __init__(self, name: str, doc: str):
        self.name = name
        self.__doc__ = doc

    @overload
    def __get__(self, folder: None, owner: type) -> Subpath: ...

    @overload
    def __get__(self, folder: ExperimentFolder, owner: type | None = None) -> Path: ...

    def __get__(self, folder: ExperimentFolder | None, owner: type | None = None) -> Path | Subpath:
        return self if folder is None else folder.path / self.name


class ExperimentFolder:
    """A folder ``<root>/<experiment>/<name>`` that its experiment's latest link may name.

    A kind sets `LINK` (its link's file name in the experiment folder) and `KIND` (for
    messages), and says when a folder may become the latest one (`ready`).

    Attributes:
        path: the folder, ``<root>/<experiment>/<name>``.
        name: its name.
        experiment: the experiment name (the parent folder).
    """

    LINK: ClassVar[str] = LATEST
    KIND: ClassVar[str] = "folder"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        _LINKS.add(cls.LINK)

    def __init__(self, path: str | Path):
        check_local(path)
        self.path = Path(path).absolute()
        self.name = self.path.name
        self.experiment = self.path.parent.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ExperimentFolder)
            and type(other) is type(self)
            and other.path == self.path
        )

    def __hash__(self) -> int:
        return hash(self.path)

    spec_path = Subpath(SPEC_FILE, "The spec the folder was made from.")

    def read_spec(self) -> ExperimentSpec:
        """Load the folder's spec."""
        from floodlab.specs import load_spec

        return load_spec(self.spec_path)

    # -- creation -------------------------------------------------------------------------
    @classmethod
    def make(cls, root: str | Path, experiment: str, name: str | None, default: str) -> Self:
        """Create ``<root>/<experiment>/<name>`` (reused when it exists).

        Args:
            root: the runs root (``logging.root``).
            experiment: the experiment name.
            name: the folder name; None takes `default`, suffixed ``-2``, ``-3``, ... when
                that exists already (two folders made in the same second).
            default: the name to start from.

        Raises:
            FloodlabError: `name` is a link name or contains '/'.
        """
        check_local(root)
        exp_dir = Path(root).absolute() / experiment
        exp_dir.mkdir(parents=True, exist_ok=True)
        if name is None:
            name, n = default, 1
            while (exp_dir / name).exists():
                n += 1
                name = f"{default}-{n}"
        if name in _LINKS or "/" in name:
            raise FloodlabError(
                f"{cls.KIND} name {name!r}: must not be one of {sorted(_LINKS)} or contain '/'"
            )
        folder = cls(exp_dir / name)
        folder.path.mkdir(parents=True, exist_ok=True)
        return folder

    # -- the latest link ------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether this folder may become its experiment's latest."""
        return self.spec_path.is_file()

    def mark_latest(self) -> bool:
        """Point the experiment's latest link of this kind here, if `ready`.

        Returns:
            Whether the link now points here.
        """
        if not self.ready():
            return False
        if self.latest_name(self.path.parent) != self.name:
            _point(self.path.parent / self.LINK, self.name)
        return True

    @classmethod
    def latest_name(cls, exp_dir: Path) -> str | None:
        """The name the experiment's latest link of this kind points at, if any."""
        link = exp_dir / cls.LINK
        if link.is_symlink():
            return os.readlink(link).rstrip("/").split("/")[-1]
        if link.is_file():
            return link.read_text().strip() or None
        return None

    # -- lookup ---------------------------------------------------------------------------
    @classmethod
    def is_folder(cls, path: Path) -> bool:
        """Whether `path` is a folder of this kind."""
        return (path / SPEC_FILE).is_file()

    @classmethod
    def names_for(cls, name: str) -> tuple[str, ...]:
        """Folder names a ``<experiment>/<name>`` reference may mean, in order."""
        return (name,)

    @classmethod
    def find(cls, ref: str | Path, root: str | Path) -> Self | None:
        """The folder `ref` names (see the module docstring), or None.

        Args:
            ref: a folder path, ``<experiment>/<name>``, ``<experiment>/latest`` or
                ``<experiment>`` (its latest).
            root: the runs root searched for ``<experiment>/...`` references.
        """
        check_local(root)
        direct = Path(ref)
        if cls.is_folder(direct):
            return cls(direct)
        parts = [p for p in str(ref).strip("/").split("/") if p]
        if len(parts) == 1:
            parts.append(LATEST)
        if len(parts) != 2:
            return None
        exp_dir = Path(root) / parts[0]
        names = (cls.latest_name(exp_dir),) if parts[1] == LATEST else cls.names_for(parts[1])
        for name in names:
            if name is not None and cls.is_folder(exp_dir / name):
                return cls(exp_dir / name)
        return None

    @classmethod
    def in_experiment(cls, exp_dir: Path) -> list[Path]:
        """The folders of this kind in one experiment folder, sorted by name."""
        if not exp_dir.is_dir():
            return []
        return sorted(
            d
            for d in exp_dir.iterdir()
            if d.name not in _LINKS and not d.is_symlink() and cls.is_folder(d)
        )


def _point(link: Path, name: str) -> None:
    """Atomically point `link` at the sibling `name` (a relative symlink, else a text file)."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
    try:
        os.symlink(name, tmp)
    except OSError:  # filesystems without symlinks
        atomic_write_text(link, name + "\n")
        return
    os.replace(tmp, link)
