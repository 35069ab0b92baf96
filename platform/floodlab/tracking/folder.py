"""Named folders of an experiment, ``<root>/<experiment>/<name>/``, and their latest links.

Runs (`floodlab.tracking.rundir.RunDir`) and sweeps (`floodlab.tracking.sweepdir.SweepDir`)
live side by side in one experiment folder. Each kind keeps its own link there to its
latest usable folder (a relative symlink, or a one-line text file on filesystems without
symlinks) and is found the same way: a folder path, ``<experiment>/<name>``,
``<experiment>/latest`` or just ``<experiment>``. This module imports no torch.

The root may be a URL on object storage (``s3://bucket/runs``): a folder there is used
through a local working copy that mirrors its home (`floodlab.tracking.home`), and the
latest links are one-line text objects.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self, overload

from floodlab.errors import FloodlabError
from floodlab.io import atomic_write_text
from floodlab.storage import exists, is_remote, join
from floodlab.tracking.home import Home, list_folders, write_text

if TYPE_CHECKING:
    from floodlab.specs import ExperimentSpec

SPEC_FILE = "spec.yaml"
LATEST = "latest"  # the word a reference uses: <experiment>/latest
_LINKS: set[str] = {LATEST}  # the link names of every kind (never a folder name)


def check_root(root: str | Path) -> str | Path:
    """The runs root as floodlab uses it: a URL on object storage (str) or a path.

    Raises:
        FloodlabError: naming `logging.root` and the fix (an unknown protocol, its library
            missing, credentials in the URL).
    """
    from floodlab.storage import check_location, local_path

    try:
        check_location(str(root), "logging.root")
    except ValueError as err:
        raise FloodlabError(str(err)) from None
    return str(root).rstrip("/") if is_remote(root) else local_path(root)


def _child(parent: str | Path, name: str) -> str | Path:
    """`parent`/`name` on a path or a URL."""
    return join(parent, name) if isinstance(parent, str) else parent / name


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

    # Top-level folders that live only at a remote home, never in the working copy.
    REMOTE_ONLY: ClassVar[tuple[str, ...]] = ()

    def __init__(self, path: str | Path):
        """A folder at a path, or at a URL on object storage (through its working copy)."""
        self.home: Home | None = None
        if is_remote(path):
            self.home = Home(str(path), skip=self.REMOTE_ONLY)
            self.path = self.home.local
        else:
            self.path = Path(check_root(path)).absolute()
        self.name = self.path.name
        self.experiment = self.path.parent.name

    @property
    def where(self) -> str:
        """Where the folder lives, for messages: its URL, or its path."""
        return self.home.url if self.home is not None else str(self.path)

    @property
    def location(self) -> str | Path:
        """The folder itself: its URL, or its path."""
        return self.home.url if self.home is not None else self.path

    @property
    def parent(self) -> str | Path:
        """The experiment folder holding this one: a URL or a path."""
        if self.home is not None:
            return self.home.url.rsplit("/", 1)[0]
        return self.path.parent

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ExperimentFolder)
            and type(other) is type(self)
            and other.where == self.where
        )

    def __hash__(self) -> int:
        return hash(self.where)

    # -- the home, for a folder on object storage -----------------------------------------
    def push(self, files: list[str] | None = None) -> None:
        """Mirror what changed in the working copy to the home (no-op for a local folder).

        Args:
            files: paths relative to the folder (default: every file).
        """
        if self.home is not None:
            self.home.push(files)

    def pull(self) -> Self:
        """Refresh the working copy from the home (no-op for a local folder)."""
        if self.home is not None:
            self.home.pull()
        return self

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
        base = check_root(root)
        exp_dir = _child(base if isinstance(base, str) else base.absolute(), experiment)
        if isinstance(exp_dir, Path):
            exp_dir.mkdir(parents=True, exist_ok=True)
        if name is None:
            name, n = default, 1
            while _exists(_child(exp_dir, name)):
                n += 1
                name = f"{default}-{n}"
        if name in _LINKS or "/" in name:
            raise FloodlabError(
                f"{cls.KIND} name {name!r}: must not be one of {sorted(_LINKS)} or contain '/'"
            )
        folder = cls(_child(exp_dir, name)).pull()  # a named folder may exist: reuse it
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
        parent = self.parent
        if self.latest_name(parent) != self.name:
            if isinstance(parent, str):
                write_text(join(parent, self.LINK), self.name + "\n")
            else:
                _point(parent / self.LINK, self.name)
        return True

    @classmethod
    def latest_name(cls, exp_dir: str | Path) -> str | None:
        """The name the experiment's latest link of this kind points at, if any."""
        if isinstance(exp_dir, str):
            from floodlab.storage import read_bytes

            data = read_bytes(join(exp_dir, cls.LINK))
            return (data.decode().strip() or None) if data is not None else None
        link = exp_dir / cls.LINK
        if link.is_symlink():
            return os.readlink(link).rstrip("/").split("/")[-1]
        if link.is_file():
            return link.read_text().strip() or None
        return None

    # -- lookup ---------------------------------------------------------------------------
    @classmethod
    def is_folder(cls, path: str | Path) -> bool:
        """Whether `path` (a path or a URL) is a folder of this kind."""
        if isinstance(path, str):
            return exists(join(path, SPEC_FILE))
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
        base = check_root(root)
        if is_remote(ref):
            url = str(ref).rstrip("/")
            return cls(url).pull() if cls.is_folder(url) else None
        direct = Path(ref)
        if cls.is_folder(direct):
            return cls(direct)
        parts = [p for p in str(ref).strip("/").split("/") if p]
        if len(parts) == 1:
            parts.append(LATEST)
        if len(parts) != 2:
            return None
        exp_dir = _child(base, parts[0])
        names = (cls.latest_name(exp_dir),) if parts[1] == LATEST else cls.names_for(parts[1])
        for name in names:
            if name is not None and cls.is_folder(_child(exp_dir, name)):
                return cls(_child(exp_dir, name)).pull()
        return None

    @classmethod
    def in_experiment(cls, exp_dir: str | Path) -> list[str]:
        """The names of the folders of this kind in one experiment folder, sorted."""
        if isinstance(exp_dir, str):
            return [
                n
                for n in list_folders(exp_dir)
                if n not in _LINKS and cls.is_folder(join(exp_dir, n))
            ]
        if not exp_dir.is_dir():
            return []
        return sorted(
            d.name
            for d in exp_dir.iterdir()
            if d.name not in _LINKS and not d.is_symlink() and cls.is_folder(d)
        )


def _exists(location: str | Path) -> bool:
    return exists(location) if isinstance(location, str) else location.exists()


def _point(link: Path, name: str) -> None:
    """Atomically point `link` at the sibling `name` (a relative symlink, else a text file)."""
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(4)}")
    try:
        os.symlink(name, tmp)
    except OSError:  # filesystems without symlinks
        atomic_write_text(link, name + "\n")
        return
    os.replace(tmp, link)
