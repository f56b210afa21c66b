"""Per-track feature files and shard files with random values, for tests and the merge
benchmark."""

import h5py
import numpy as np


def write_track_file(path, track, n_frames=1293, seed=0, status="ok", reason=""):
    """A per-track feature file (one track at the file's root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        return write_track_group(f, track, n_frames, seed, status, reason)


def write_shard_file(path, specs):
    """A shard file as docs/contracts.md describes it; ``specs`` are
    ``(track, n_frames, seed, status, reason)``. Returns ``{track: features}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(tracks=[spec[0] for spec in specs], shard=path.stem, genreflow_version="test")
        return {spec[0]: write_track_group(f.create_group(spec[0]), *spec) for spec in specs}


def write_track_group(group, track, n_frames=1293, seed=0, status="ok", reason=""):
    """One track's attrs and (when ok) frame-level features in an HDF5 group."""
    rng = np.random.default_rng(seed)
    features = {
        "mfcc": rng.normal(size=(20, n_frames)),
        "mel_db": -80 * rng.random((128, n_frames)),
        "chroma": rng.random((12, n_frames)),
        "rms": rng.random(n_frames),
        "spectral_centroid": 3000 * rng.random(n_frames),
        "spectral_bandwidth": 2000 * rng.random(n_frames),
        "rolloff": 5000 * rng.random(n_frames),
        "zero_crossing_rate": rng.random(n_frames) / 5,
    }
    group.attrs.update(
        track=track, label=track.split("/")[0], source=f"/audio/{track}.wav", sr=22050,
        n_samples=(n_frames - 1) * 512, tempo=120.0 + seed, status=status, reason=reason,
    )
    if status == "ok":
        for name, value in features.items():
            group[name] = value.astype(np.float32)
    return {k: v.astype(np.float32) for k, v in features.items()}
