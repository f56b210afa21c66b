"""What made a model (data hashes, settings, versions, commit) and the ``manifest.json`` that vouches for
its folder: :func:`check_manifest` refuses files that do not match it, or an incompatible genreflow's."""

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
    """Provenance of one job: SHA-256 of its ``inputs`` (``{name: path}``), its ``settings`` (its rule's
    params), package versions and the git commit."""
    versions = {"genreflow": __version__}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    inputs = {name: {"path": str(path), "sha256": sha256_of(path)} for name, path in inputs.items() if path}
    git = git_state(Path(__file__).resolve().parent)
    return {"inputs": inputs, "settings": settings or {}, "versions": versions, "git": git}


def write_manifest(outdir, files, card):
    """Write ``manifest.json``: ``card`` plus the SHA-256 of each of ``files`` in ``outdir``."""
    outdir = Path(outdir)
    digests = {name: sha256_of(outdir / name) for name in files}
    manifest = {"format": MANIFEST_FORMAT, "analysis": analysis_settings(), **card, "files": digests}
    (outdir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


class UntrustedModelError(ValueError):
    """A model folder that the workflow did not write as it is now, or cannot be read."""


def check_manifest(model_dir, trust=False):
    """The manifest of ``model_dir`` (``results/models/<model>/<input>``), after checking its files and version.

    ``trust`` accepts files whose hashes differ from the manifest (``--trust``): model files are pickles or
    Keras archives, which run code when loaded.

    Raises
    ------
    UntrustedModelError
        No manifest, a missing or changed file, or another manifest format or analysis setting than this version's.
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
