"""Send a job's logging, warnings and uncaught errors to its Snakemake log file."""

from __future__ import annotations

import logging
import sys


def setup_logging(log_path, level=logging.INFO):
    """Log to stderr and ``log_path`` (if not ``None``), warnings and uncaught exceptions included.

    Job scripts call this first: it also gives the process a numba cache of its own, before librosa or numba load.
    """
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=handlers, force=True)
    logging.captureWarnings(True)
    log = logging.getLogger("genreflow")
    sys.excepthook = lambda kind, value, traceback: log.critical("failed: %s", value, exc_info=(kind, value, traceback))
    # a numba cache of its own, so that jobs side by side cannot corrupt a shared one (see genreflow/devices.py)
    from genreflow.devices import use_job_numba_cache

    use_job_numba_cache()
    return log
