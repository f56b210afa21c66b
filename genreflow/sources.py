"""Where tracks come from: the demo set, a folder tree, a manifest CSV, a download.

Every source becomes the same track list: a DataFrame with ``track`` (``<label>/<stem>``),
``label`` and ``path``, sorted by track, so the DAG is known before any job runs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.request
from pathlib import Path

import pandas as pd

from genreflow.constants import AUDIO_EXTENSIONS, GTZAN_GENRES
from genreflow.files import atomic_path

TRACK_COLUMNS = ["track", "label", "path"]
# folders that hold the genre folders in common GTZAN copies
KNOWN_SUBFOLDERS = ("genres", "genres_original", "Data/genres_original", "Data/genres")


def demo_tracks(root, tracks_per_genre):
    """The track list of the demo set in ``root`` (e.g. ``resources/demo``); rules generate the files later."""
    stems = [(genre, f"{genre}.{i:05d}") for genre in GTZAN_GENRES for i in range(tracks_per_genre)]
    rows = [(f"{genre}/{stem}", genre, str(Path(root) / genre / f"{stem}.wav")) for genre, stem in stems]
    return pd.DataFrame(rows, columns=TRACK_COLUMNS)


def folder_tracks(root, extensions=AUDIO_EXTENSIONS):
    """Tracks of a ``<root>/<label>/<file>`` tree, or of one in a ``KNOWN_SUBFOLDERS`` folder of ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset.folder '{root}' is not a folder; set it to the folder holding one sub-folder per genre"
        )
    suffixes = {f".{e.lower()}" for e in extensions}

    def holds_genres(folder):  # any sub-folder with audio files
        subfolders = (d for d in folder.iterdir() if d.is_dir())
        return any(any(f.suffix.lower() in suffixes for f in d.iterdir()) for d in subfolders)

    if not holds_genres(root):
        known = [root / name for name in KNOWN_SUBFOLDERS if (root / name).is_dir()]
        root = next((folder for folder in known if holds_genres(folder)), root)
    rows = []
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(label_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in suffixes:
                rows.append((f"{label_dir.name}/{path.stem}", label_dir.name, str(path)))
    if not rows:
        raise ValueError(
            f"no audio files ({', '.join(sorted(suffixes))}) in sub-folders of '{root}'; "
            "dataset.folder must hold <label>/<file> (e.g. GTZAN's genres/blues/blues.00000.wav)"
        )
    return _checked(pd.DataFrame(rows, columns=TRACK_COLUMNS), str(root))


def manifest_tracks(manifest):
    """Tracks listed in a CSV with columns ``path,label``; relative paths start at the CSV's folder."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(f"dataset.manifest '{manifest}' does not exist; give a CSV with columns path,label")
    table = pd.read_csv(manifest, dtype=str)
    missing = {"path", "label"} - set(table.columns)
    if missing:
        raise ValueError(f"{manifest}: missing column(s) {sorted(missing)}; the manifest needs columns path,label")
    rows = []
    for line, (path, label) in enumerate(zip(table["path"], table["label"]), start=2):
        if not isinstance(path, str) or not isinstance(label, str):
            raise ValueError(f"{manifest}, line {line}: empty path or label")
        full = Path(path) if Path(path).is_absolute() else manifest.parent / path
        rows.append((f"{label}/{full.stem}", label, str(full)))
    tracks = _checked(pd.DataFrame(rows, columns=TRACK_COLUMNS), str(manifest))
    absent = [p for p in tracks["path"] if not Path(p).is_file()]
    if absent:
        raise FileNotFoundError(
            f"{manifest}: {len(absent)} listed file(s) do not exist, e.g. {absent[:3]}; "
            "fix the paths or remove the rows"
        )
    return tracks


def shard_count(n_tracks, tracks_per_job):
    """Number of shards: the largest power of two <= ``n_tracks / tracks_per_job``, at least 1.

    Powers of two only, so when the dataset grows past one every shard splits in two (shard
    ``i`` of ``B`` becomes ``i`` and ``i + B`` of ``2B``): tracks never move between shards otherwise.
    """
    if tracks_per_job < 1:
        raise ValueError(f"tracks_per_job must be at least 1, got {tracks_per_job}")
    ratio = max(1, int(n_tracks) // int(tracks_per_job))
    return 1 << (ratio.bit_length() - 1)


def shard_index(track, n_shards):
    """Shard (0 .. n_shards - 1) of one track: a BLAKE2b hash of its id, modulo ``n_shards``.

    The same on every machine and run (unlike ``hash``), whatever other tracks exist. Not CRC-32:
    it is linear, so consecutive ids (``blues.00000``, ``blues.00001``, ...) share their low
    bits in runs of four and small shards would be lopsided.
    """
    digest = hashlib.blake2b(str(track).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def assign_shards(tracks, tracks_per_job):
    """A copy of a track list with a ``shard`` column (e.g. ``"0-of-2"``): the extraction job of each track.

    Sharded by :func:`shard_index` among :func:`shard_count` shards of the whole list, whatever the
    genre: a job's start-up (~2.5 CPU-s) is paid once per shard, so a small dataset is one or two jobs.
    Adding or removing a track changes only its own shard, unless the dataset crosses a power of two
    of ``tracks_per_job`` and every shard splits (or joins) in two. Shards average 1-2 x ``tracks_per_job``.
    """
    n = shard_count(len(tracks), tracks_per_job)
    # the count in the name: a split shard is a new file, never an old one with other tracks
    return tracks.assign(shard=[f"{shard_index(track, n)}-of-{n}" for track in tracks["track"]])


def sha256_of(path, chunk=1 << 20):
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch_archive(url, sha256, archive):
    """Download ``url`` to ``archive`` atomically; a SHA-256 mismatch keeps it as ``<archive>.bad`` and raises."""
    archive = Path(archive)
    with atomic_path(archive) as tmp:
        with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
        actual = sha256_of(tmp)
        if sha256 and actual != sha256.lower():
            os.replace(tmp, archive.with_name(archive.name + ".bad"))
            raise ValueError(
                f"{url}: sha256 is {actual}, dataset.download.sha256 expects {sha256}; "
                "fix the URL or the checksum in config.yaml"
            )


def unpack_archive(archive, dest):
    """Unpack a tar archive into ``dest``, atomically."""
    with atomic_path(dest) as tmp, tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")


def _checked(tracks, where):
    duplicated = tracks["track"][tracks["track"].duplicated()]
    if len(duplicated):
        raise ValueError(
            f"{where}: tracks {duplicated.tolist()[:3]} appear more than once (same label and file stem "
            "in two formats?); keep one file per track"
        )
    return tracks.sort_values("track").reset_index(drop=True)


def audio_files(paths, extensions=AUDIO_EXTENSIONS):
    """Every audio file among ``paths``, for prediction.

    A folder is searched (sorted); a file with another extension is a list of paths, one a
    line (``#`` comments; relative to the list); any other path is kept (a missing one fails when read).
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lstrip(".").lower() in extensions)
        elif path.is_file() and path.suffix.lstrip(".").lower() not in extensions:
            lines = [line.strip() for line in path.read_text().splitlines()]
            found += [path.parent / line for line in lines if line and not line.startswith("#")]
        else:
            found.append(path)
    return found
