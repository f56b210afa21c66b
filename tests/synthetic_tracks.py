"""Shard files of synthetic tracks with random values, for tests and the merge benchmark."""

import h5py
import numpy as np

from genreflow.constants import EMBEDDING_GROUP
from genreflow.features import write_track


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


def write_genre_shard(path, specs, rng):
    """A shard file of accepted tracks whose feature levels follow their genre, so that
    models can tell genres apart; ``specs`` are ``(track, n_frames, offset, n_windows)``,
    ``offset`` the genre's level and ``n_windows`` the made-up musicnn rows (None: the
    shard was extracted without an embedding)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs.update(tracks=[spec[0] for spec in specs], shard=path.stem, genreflow_version="test")
        for track, n_frames, offset, n_windows in specs:
            features = {
                "mfcc": rng.normal(offset, 1.0, (20, n_frames)) * 10,
                "mel_db": np.clip(rng.normal(-40 + 5 * offset, 10, (128, n_frames)), -80, 0),
                "chroma": rng.uniform(0, 1, (12, n_frames)),
            }
            for name in ("rms", "spectral_centroid", "spectral_bandwidth", "rolloff", "zero_crossing_rate"):
                features[name] = np.abs(rng.normal(offset + 1, 0.5, n_frames))
            if n_windows is not None:
                features[EMBEDDING_GROUP] = {
                    "penultimate": rng.normal(offset, 1.0, (n_windows, 200)),
                    "taggram": rng.uniform(0, 1, (n_windows, 50)),
                }
            attrs = {
                "track": track, "label": track.split("/")[0], "source": f"/nowhere/{track}.wav",
                "sr": 22050, "n_samples": (n_frames - 1) * 512, "tempo": 100.0 + offset,
                "status": "ok", "reason": "", "genreflow_version": "test",
                "embedding": "none" if n_windows is None else "MSD_musicnn",
            }
            write_track(f.create_group(track), attrs, features)
