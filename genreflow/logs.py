"""Send a job's logging, warnings and uncaught errors to its Snakemake log file."""

from __future__ import annotations

import logging
import sys


def setup_logging(log_path, level=logging.INFO):
    """Log to ``log_path`` (and stderr), capture warnings, and log uncaught exceptions;
    give the job's process a numba cache of its own (``use_job_numba_cache``).

    Job scripts call this first, before importing librosa or numba.

    Parameters
    ----------
    log_path : path-like or None
        The rule's ``log:`` file; ``None`` logs to stderr only.
    level : int
        Logging level of the root logger.
    """
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)

    def log_uncaught(kind, value, traceback):
        logging.getLogger("genreflow").critical("failed: %s", value, exc_info=(kind, value, traceback))

    sys.excepthook = log_uncaught
    # Before the job imports librosa or numba: a numba cache of its own, so that jobs
    # running side by side cannot corrupt a shared one (see genreflow/devices.py).
    from genreflow.devices import use_job_numba_cache

    use_job_numba_cache()
    return logging.getLogger("genreflow")
