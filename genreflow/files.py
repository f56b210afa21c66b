"""Write a file or folder so that readers see all of it or nothing.

Rule outputs need no such care: Snakemake removes a failed job's outputs and marks a killed one
incomplete. This is for what a caller outside Snakemake also writes (`genreflow predict`'s shard
files, the merge's outputs) and a download.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside the file or folder ``path``; rename it to ``path`` if the block succeeds.

    The temporary name is hidden, unique (two writers never share it) and in the same
    folder, so the rename is atomic. On any error it is removed and ``path`` keeps what it held.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
