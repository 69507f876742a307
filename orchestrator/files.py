"""Files replaced atomically (a reader sees the old file or the new one, never a part of either), and files
checked before a run that will write them."""

from __future__ import annotations

import contextlib
import os
import tempfile


def write_atomically(path: str, text: str, *, mode: int = 0o644) -> None:
    """Write `text` to a temporary file beside `path`, fsync it, give it `mode`, rename it over `path`.

    The temporary name starts with a dot and ends in `.tmp`, so globbing readers (node_exporter reads `*.prom`)
    never pick it up. Raise OSError if it cannot be written; no temporary file is left behind.
    """
    directory = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, mode)  # mkstemp makes it 0600: another user (node_exporter) could not read it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename survives a crash once the directory is synced too
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)


def why_not_appendable(path: str) -> str | None:
    """Why `path` cannot be created or appended to, or None if it can (its directories are made as needed).

    Checked by trying, before a run, so that a report that cannot be written stops the run before anything is
    sent (permissions alone do not tell: root passes every access check, /proc refuses new files anyway). A
    file made for the try is removed again.
    """
    if os.path.isdir(path):
        return "is a directory"
    existed = os.path.exists(path)
    ancestor = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        return f"cannot be created: {ancestor} is not a directory"
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        if not existed:
            os.unlink(path)
    except OSError as exc:
        return f"cannot be written: {exc.strerror or exc}"
    return None
