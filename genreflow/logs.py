"""Send a job's logging, warnings and uncaught errors to its Snakemake log file."""

from __future__ import annotations

import logging
import sys


def setup_logging(log_path, level=logging.INFO):
    """Log to ``log_path`` (and stderr), capture warnings, and log uncaught exceptions.

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
    return logging.getLogger("genreflow")
