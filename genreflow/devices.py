"""What a job computes on: the device a network trains on, and a numba cache of its own.

:func:`training_device` refuses to train on the CPU when the job was given a GPU that TensorFlow cannot
see (usually the CPU-only TensorFlow of the default install). :func:`use_job_numba_cache` gives each job
process a numba cache of its own, seeded from and published to shared snapshots, because numba's cache
takes no lock: jobs compiling the same functions at once can leave mismatched files (index and data, or a
gufunc's kernel and wrapper) that make the next process segfault (numba issue #10128).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib.util
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

#: Environment variables through which a scheduler hands a job its GPUs.
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "SLURM_GPUS", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS")
# values that name no device (CUDA reads "-1" as "hide every GPU")
_NO_DEVICE = {"", "-1", "nodevfiles", "none"}


def _names_a_gpu(variable, value):
    first = value.split(",")[0].strip()
    if first.lower() in _NO_DEVICE or first.startswith("-"):
        return False
    if variable == "SLURM_GPUS":  # a count, "N" or "type:N"
        count = first.rsplit(":", 1)[-1]
        return not count.isdigit() or int(count) > 0
    return True


def assigned_gpu(environ=None):
    """``"VARIABLE=value"`` of the first variable in ``environ`` (default ``os.environ``) that gives this
    process a GPU, or None."""
    environ = os.environ if environ is None else environ
    for variable in GPU_VARIABLES:
        value = environ.get(variable)
        if value is not None and _names_a_gpu(variable, value):
            return f"{variable}={value}"
    return None


def tensorflow_gpus():
    """Names of the GPUs TensorFlow can use here (``[]`` with tensorflow-cpu)."""
    import tensorflow as tf

    names = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        names.append(details.get("device_name") or device.name)
    return names


def _why_no_gpu():
    try:
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
    except Exception:  # noqa: BLE001 - only used to word the message
        return "TensorFlow sees no GPU"
    if not build.get("is_cuda_build"):
        return f"this TensorFlow {tf.__version__} is built without CUDA (tensorflow-cpu)"
    return (
        f"TensorFlow {tf.__version__} is built with CUDA {build.get('cuda_version', '?')} "
        "but finds no usable GPU (check the NVIDIA driver and `nvidia-smi` on the node)"
    )


def bound_tensorflow_threads(threads):
    """Bound TensorFlow's thread pools to about ``threads`` cores (intra-op ``threads``,
    inter-op 1). Pools can only be set before TensorFlow starts; when it already has (a
    second model in one process), the current pools stay."""
    import tensorflow as tf

    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        log.debug("TensorFlow already started; keeping its thread pools")


def training_device(allow_cpu=False, environ=None):
    """The device a network job trains on: the first GPU's name (e.g. ``"NVIDIA H100 80GB HBM3"``), or ``"CPU"``.

    Raises
    ------
    RuntimeError
        The job was given a GPU (:data:`GPU_VARIABLES` in ``environ``, default ``os.environ``) that
        TensorFlow cannot see, and ``allow_cpu`` (config ``neural.allow_cpu``) is false.
    """
    gpus = tensorflow_gpus()
    if gpus:
        return gpus[0]
    given = assigned_gpu(environ)
    if given and not allow_cpu:
        raise RuntimeError(
            f"this job was given a GPU ({given}) but {_why_no_gpu()}, so it would train "
            "on the CPU. Install TensorFlow with CUDA: `make venv GPU=1` for .venv, or "
            "`neural: {install: gpu}` in config.yaml for --software-deployment-method "
            "conda. To train on the CPU anyway, set `neural: {allow_cpu: true}` in "
            "config.yaml (or --config 'neural={allow_cpu: true}')."
        )
    return "CPU"


#: Environment variable naming the folder of published cache snapshots.
SHARED_CACHE_VARIABLE = "GENREFLOW_NUMBA_CACHE"
# a snapshot no longer current is deleted this long after it was made (a job copies one in milliseconds)
_SNAPSHOT_GRACE_S = 3600


def shared_numba_cache():
    """Folder of published snapshots: ``$GENREFLOW_NUMBA_CACHE``, else ``<sys.prefix>/var/cache/genreflow-numba``,
    so that it lives and goes with the environment whose code it caches."""
    return Path(os.environ.get(SHARED_CACHE_VARIABLE) or Path(sys.prefix) / "var" / "cache" / "genreflow-numba")


def cpu_key():
    """Name of this machine's snapshots: what numba's cache keys on (CPU name and features, as
    ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` may set them) and the numba and Python versions."""
    import llvmlite.binding as llvm  # numba's compiler; does not import numba

    name = os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    features = os.environ.get("NUMBA_CPU_FEATURES") or llvm.get_host_cpu_features().flatten()
    # numba's version from its dist-info folder's name (importlib.metadata is slower)
    spec = importlib.util.find_spec("numba")
    site = Path(spec.origin).parent.parent if spec and spec.origin else None
    numba_version = sorted(p.name for p in site.glob("numba-*.dist-info")) if site else []
    key = f"{platform.machine()} {name} {features} {numba_version} {'%d.%d' % sys.version_info[:2]}"
    return f"{platform.machine()}-{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _listing(root):
    """``{relative path: (size, mtime_ns)}`` of every file below ``root``."""
    listing = {}
    for path in Path(root).rglob("*"):
        if path.is_file():
            stat = path.stat()
            listing[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns)
    return listing


def _copy_current(shared, private):
    """Fill ``private`` with the current snapshot in ``shared``; its listing ({} if none)."""
    try:
        snapshot = (shared / "current").resolve(strict=True)
        shutil.copytree(snapshot, private, dirs_exist_ok=True)
    except (OSError, shutil.Error):
        # none yet, or replaced and pruned while we copied: start empty
        shutil.rmtree(private, ignore_errors=True)
        private.mkdir(parents=True, exist_ok=True)
        return {}
    return _listing(private)


def _publish(private, shared, seeded):
    """Make ``private`` the current snapshot if it holds code the snapshot lacked."""
    try:
        if _listing(private) == seeded:  # compiled nothing new
            return
        shared.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        staging = shared / f".{name}.tmp"
        shutil.copytree(private, staging)
        os.rename(staging, shared / name)
        link = shared / f".{name}.link"
        os.symlink(name, link)
        os.replace(link, shared / "current")  # atomic: readers see old or new
        _prune(shared, keep=name)
    except (OSError, shutil.Error) as error:
        # e.g. a read-only environment: this job's compiled code is simply not shared
        log.info("numba cache not published to %s: %s", shared, error)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _prune(shared, keep):
    cutoff = time.time() - _SNAPSHOT_GRACE_S
    for entry in shared.iterdir():
        if entry.name in (keep, "current") or entry.is_symlink():
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


def use_job_numba_cache(shared=None, scratch=None):
    """Give this process a numba cache of its own, filled from the shared snapshot; return its folder.

    Call it at the start of a job, before librosa or numba is imported (``setup_logging`` does). Sets
    ``NUMBA_CACHE_DIR`` to a new folder in ``scratch`` (default ``$TMPDIR``), copies this CPU's current
    snapshot from ``shared`` (default :func:`shared_numba_cache`) into it (about 3 MB for librosa: ~10 ms),
    and at exit publishes it as the new snapshot if the process compiled anything new, then deletes it.
    Returns None, changing nothing, where numba is not installed (e.g. the report's conda env).
    """
    if importlib.util.find_spec("numba") is None:
        return None
    shared = Path(shared or shared_numba_cache()) / cpu_key()
    private = Path(tempfile.mkdtemp(prefix="genreflow-numba-", dir=scratch))
    seeded = _copy_current(shared, private)
    os.environ["NUMBA_CACHE_DIR"] = str(private)
    numba = sys.modules.get("numba")
    if numba is not None:
        # functions decorated already keep the default cache, which is what this function exists to avoid
        numba.config.CACHE_DIR = str(private)
        log.warning("numba was imported before use_job_numba_cache(): call it first")
    atexit.register(_publish, private, shared, seeded)
    return private


def warm_numba_cache():
    """Compile and publish what extraction compiles (librosa's cached functions, float32
    and float64), so that jobs start from a warm snapshot: ``make venv`` runs this."""
    private = use_job_numba_cache()
    import numpy as np

    import librosa

    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        y = (0.1 * rng.standard_normal(22050 * 3)).astype(dtype)
        librosa.feature.zero_crossing_rate(y)
        librosa.estimate_tuning(y=y, sr=22050)
        librosa.feature.chroma_stft(y=y, sr=22050)
        librosa.feature.tempo(y=y, sr=22050)
    return private


if __name__ == "__main__":
    if sys.argv[1:] != ["warm-numba-cache"]:
        sys.exit("usage: python -m genreflow.devices warm-numba-cache")
    logging.basicConfig(level=logging.INFO)
    warm_numba_cache()
    print(f"numba cache snapshot: {shared_numba_cache() / cpu_key()}")
