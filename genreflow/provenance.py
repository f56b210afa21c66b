"""What made a model: data hashes, settings, versions, commit, device; and its manifest.

Every model folder ``results/models/<model>/<input>/`` holds a ``manifest.json``
written by the job runner: what prediction needs to compute exactly the features the
model saw (input, genres, window and analysis settings), the SHA-256 of every model
file, and the provenance of the run. :func:`check_manifest` refuses a folder whose files
do not match it, or that an incompatible version of genreflow wrote.
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

from genreflow import __version__, constants
from genreflow.sources import sha256_of

#: Bumped when a model folder's layout or its features change meaning.
MANIFEST_FORMAT = 1
#: Packages whose versions decide a model's numbers.
PACKAGES = ("numpy", "scipy", "librosa", "scikit-learn", "tensorflow", "tensorflow-cpu", "keras", "h5py", "pandas")


def analysis_settings():
    """The feature extraction's fixed parameters (``genreflow.constants``)."""
    names = ("SR", "N_FFT", "HOP_LENGTH", "N_MFCC", "N_MELS", "N_CHROMA", "N_FRAMES")
    return {name.lower(): getattr(constants, name) for name in names}


def git_state(folder):
    """``{"commit": sha, "dirty": bool}`` of the checkout holding ``folder`` (None outside one)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode:
            return None
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": dirty}


def run_provenance(inputs, settings=None):
    """Provenance of one job: SHA-256 of its input files, its settings, versions, commit.

    Parameters
    ----------
    inputs : mapping
        ``{name: path}`` of the data the job read (``split``, ``table``, ``dataset``).
    settings : dict, optional
        The job's configuration (its rule's params).
    """
    versions = {"genreflow": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {
        "inputs": {name: {"path": str(path), "sha256": sha256_of(path)} for name, path in inputs.items() if path},
        "settings": settings or {},
        "versions": versions,
        "git": git_state(Path(__file__).resolve().parent),
    }


def write_manifest(outdir, files, card):
    """Write ``manifest.json``: ``card`` plus the SHA-256 of each of ``files`` in ``outdir``."""
    outdir = Path(outdir)
    manifest = {
        "format": MANIFEST_FORMAT,
        "analysis": analysis_settings(),
        **card,
        "files": {name: sha256_of(outdir / name) for name in files},
    }
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


class UntrustedModelError(ValueError):
    """A model folder that the workflow did not write as it is now, or cannot be read."""


def check_manifest(model_dir, trust=False):
    """The manifest of ``model_dir``, after checking its files and version.

    Parameters
    ----------
    model_dir : path-like
        ``results/models/<model>/<input>``.
    trust : bool
        Load files whose hashes differ from the manifest (``--trust``): model files are
        pickles or Keras archives, which run code when loaded.

    Raises
    ------
    UntrustedModelError
        No manifest, a file changed since the job wrote it, or another manifest format
        or analysis setting than this version's.
    """
    model_dir = Path(model_dir)
    path = model_dir / "manifest.json"
    if not path.exists():
        raise UntrustedModelError(
            f"{model_dir}: no manifest.json, so not a model folder that genreflow wrote (or one "
            "from before manifests); retrain it with snakemake, or pass --trust to load it anyway"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("analysis") != analysis_settings():
        raise UntrustedModelError(
            f"{path}: written by genreflow "
            f"{manifest.get('provenance', {}).get('versions', {}).get('genreflow', '?')} with "
            f"format {manifest.get('format')} and analysis {manifest.get('analysis')}; this version "
            f"reads format {MANIFEST_FORMAT} with {analysis_settings()}: retrain the model"
        )
    for name, digest in manifest["files"].items():
        if not (model_dir / name).exists():
            raise UntrustedModelError(f"{model_dir / name}: listed in {path} but missing; retrain the model")
        if sha256_of(model_dir / name) != digest and not trust:
            raise UntrustedModelError(
                f"{model_dir / name} differs from the SHA-256 in {path}: the file changed after the "
                "workflow wrote it. Model files run code when loaded; retrain it, or pass --trust "
                "if you know where it came from"
            )
    return manifest
