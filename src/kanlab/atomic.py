"""Atomic updates of several files in one directory (used for checkpoints).

A checkpoint is several files that must change together: ``config.json`` records the hash of
``model.safetensors``, and ``train_state.pt`` the weights it continues from.  Renaming them into place one by
one leaves windows in which a killed process mixes old and new files.  A :class:`Transaction` closes them with
a small journal:

1. every new file is written and fsynced under a hidden pending name, ``.NAME.TAG.pending``;
2. the commit record ``.kanlab-commit.json`` (which pending file replaces which name) is written atomically
   (temporary file, fsync, rename) — **this rename is the commit point**;
3. the pending files are renamed over the old ones, then the record is deleted.

Readers find files through :func:`resolve`: while a commit record exists, a listed file that has not been
renamed yet is read from its pending name.  So whenever the writer was killed, a reader sees the complete old
set (before the commit point) or the complete new set (after it), never a mix.  The next transaction on the
directory first finishes a committed one (rolls forward) and deletes the pending files of an uncommitted one.
Other files in the directory are left alone.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from types import TracebackType

__all__ = ["Transaction", "resolve", "recover", "write_file_atomic", "fsync_dir", "COMMIT_NAME"]

COMMIT_NAME = ".kanlab-commit.json"
_PENDING_SUFFIX = ".pending"


def fsync_dir(directory: str | os.PathLike) -> None:
    """Flush a directory's entries (renames, new files) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (created with the usual umask-governed permissions) and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_file_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace one file atomically: a temporary sibling is written, fsynced and renamed over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        _write_new(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _is_plain_name(name: object) -> bool:
    return isinstance(name, str) and bool(name) and name not in (".", "..") and "/" not in name \
        and "\\" not in name and "\0" not in name


def _read_record(directory: Path) -> dict[str, str] | None:
    """The pending files of a committed transaction, ``{name: pending name}``, or None when there is none.

    Raises ValueError when a commit record exists but cannot be understood (it was damaged or edited).
    """
    path = directory / COMMIT_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
        files = record["files"]
        ok = isinstance(files, dict) and all(
            _is_plain_name(k) and _is_plain_name(v) and v.startswith(".") and v.endswith(_PENDING_SUFFIX)
            for k, v in files.items())
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"{path}: the commit record of an interrupted save is damaged; the directory's state "
                         f"is unknown (delete {COMMIT_NAME} to fall back to the files as they are)")
    return files


def resolve(directory: str | os.PathLike, name: str) -> Path:
    """The path holding the current version of file ``name`` in ``directory`` (see the module docstring).

    Raises ValueError when the directory holds a damaged commit record.
    """
    directory = Path(directory)
    files = _read_record(directory)
    if files and name in files:
        pending = directory / files[name]
        if pending.is_file():
            return pending
    return directory / name


def recover(directory: str | os.PathLike) -> None:
    """Finish a committed transaction left by a killed writer and delete the leftovers of uncommitted ones."""
    directory = Path(directory)
    try:
        files = _read_record(directory)
    except ValueError:
        files = None  # damaged record: the caller is about to write a complete new set; drop it
    if files:
        for name, pending in files.items():
            if (directory / pending).is_file():
                os.replace(directory / pending, directory / name)
        fsync_dir(directory)
    (directory / COMMIT_NAME).unlink(missing_ok=True)
    for stray in directory.glob(f".*{_PENDING_SUFFIX}"):
        stray.unlink(missing_ok=True)
    for stray in directory.glob(f".{COMMIT_NAME}.*.tmp"):
        stray.unlink(missing_ok=True)
    fsync_dir(directory)


class Transaction:
    """Replace several files of ``directory`` together::

        with Transaction(run_dir) as tx:
            tx.write("model.safetensors", blob)
            tx.write("config.json", text.encode())
        # both new files are current now; had the process died inside the block, both old ones would be

    The directory is created if needed.  An exception inside the block discards the new files.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self._files: dict[str, str] = {}
        self._tag = ""

    def __enter__(self) -> "Transaction":
        if self.directory.exists() and not self.directory.is_dir():
            raise FileExistsError(f"{str(self.directory)!r} exists and is not a directory")
        self.directory.mkdir(parents=True, exist_ok=True)
        recover(self.directory)
        self._tag = secrets.token_hex(6)
        return self

    def write(self, name: str, data: bytes) -> None:
        """Stage the new content of file ``name`` (a plain file name inside the directory)."""
        if not _is_plain_name(name) or name == COMMIT_NAME:
            raise ValueError(f"not a plain file name: {name!r}")
        pending = f".{name}.{self._tag}{_PENDING_SUFFIX}"
        self._files[name] = pending
        _write_new(self.directory / pending, data)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            for pending in self._files.values():
                (self.directory / pending).unlink(missing_ok=True)
            return
        fsync_dir(self.directory)
        record = json.dumps({"files": self._files}).encode()
        write_file_atomic(self.directory / COMMIT_NAME, record)  # the commit point
        for name, pending in self._files.items():
            os.replace(self.directory / pending, self.directory / name)
        fsync_dir(self.directory)
        (self.directory / COMMIT_NAME).unlink()
        fsync_dir(self.directory)
