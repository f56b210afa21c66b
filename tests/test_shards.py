"""Extraction shards: which tracks share a job, the shard file, and the SLURM shape."""

import logging
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from genreflow.features import FRAME_FEATURES, TrackRejected, extract_shard_file
from genreflow.sources import assign_shards, shard_count, shard_index

ROOT = Path(__file__).resolve().parents[1]
# librosa.load imports audioread, which imports modules Python 3.13 drops: not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:'(aifc|audioop|sunau)' is deprecated:DeprecationWarning"
)


def track_list(counts):
    """A track list with ``counts[label]`` tracks per label."""
    rows = [(f"{label}/{label}.{i:05d}", label, f"/audio/{label}/{label}.{i:05d}.wav")
            for label, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["track", "label", "path"])


def members(table):
    """``{shard key: set of tracks}``."""
    return {key: set(rows["track"]) for key, rows in table.groupby("shard")}


@pytest.mark.parametrize(
    "n, per_job, expected",
    [(0, 50, 1), (1, 50, 1), (49, 50, 1), (99, 50, 1), (100, 50, 2), (199, 50, 2),
     (200, 50, 4), (1000, 50, 16), (5, 1, 4), (8, 1, 8)],
)
def test_shard_count_is_the_largest_power_of_two_of_tracks_per_job(n, per_job, expected):
    assert shard_count(n, per_job) == expected


def test_shard_count_refuses_a_zero_size():
    with pytest.raises(ValueError, match="tracks_per_job"):
        shard_count(10, 0)


def test_shard_index_is_a_stable_hash_of_the_track_id():
    # BLAKE2b: the same on every machine and Python (no PYTHONHASHSEED), a pinned value
    assert shard_index("blues/blues.00000", 1 << 30) == 612775858
    code = "from genreflow.sources import shard_index; print(shard_index('jazz/jazz.00042', 16))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}).stdout
            for seed in ("1", "2")}
    assert runs == {f"{shard_index('jazz/jazz.00042', 16)}\n"}


def test_adding_a_track_changes_only_its_own_shard():
    before = assign_shards(track_list({"blues": 120, "rock": 70}), 50)
    grown = track_list({"blues": 120, "rock": 70})
    grown.loc[len(grown)] = ["rock/new-song", "rock", "/audio/rock/new-song.wav"]
    after = assign_shards(grown.sort_values("track"), 50)
    old, new = members(before), members(after)
    assert old.keys() == new.keys()
    changed = [key for key in old if old[key] != new[key]]
    shard = after.set_index("track").loc["rock/new-song", "shard"]
    assert changed == [shard] and new[shard] == old[shard] | {"rock/new-song"}


def test_crossing_a_power_of_two_splits_each_shard_in_two():
    before = members(assign_shards(track_list({"blues": 59, "rock": 40}), 50))
    after = members(assign_shards(track_list({"blues": 60, "rock": 40}), 50))
    # shard 0 of 1 becomes 0 and 1 of 2; no track joins a track it was not with
    assert sorted(before) == ["0-of-1"] and sorted(after) == ["0-of-2", "1-of-2"]
    assert after["0-of-2"] | after["1-of-2"] == before["0-of-1"] | {"blues/blues.00059"}
    bigger = members(assign_shards(track_list({"blues": 120, "rock": 80}), 50))
    for i in (0, 1):  # 2 -> 4: shard i splits into i and i + 2
        assert bigger[f"{i}-of-4"] | bigger[f"{i + 2}-of-4"] == members(
            assign_shards(track_list({"blues": 120, "rock": 80}), 100))[f"{i}-of-2"]


def test_consecutive_track_names_spread_over_the_shards():
    """A hash whose low bits follow the name (CRC-32 does, in runs of four) would put
    consecutive tracks together."""
    table = assign_shards(track_list({"blues": 64}), 16)
    assert table["shard"].nunique() == 4
    assert table["shard"].iloc[:8].nunique() >= 3


def test_shard_sizes_for_gtzan_sized_data():
    """1000 tracks over 10 genres: 16 jobs of 40-80 tracks (<= 25 SLURM submissions),
    each mixing genres; a dataset smaller than tracks_per_job is one job."""
    table = assign_shards(track_list({f"genre{g}": 100 for g in range(10)}), 50)
    sizes = table.groupby("shard").size()
    assert len(sizes) == 16 and sizes.between(40, 80).all(), sizes.describe()
    assert (table.groupby("shard")["label"].nunique() == 10).all()
    assert table[["track", "label", "path"]].equals(track_list({f"genre{g}": 100 for g in range(10)}))
    small = assign_shards(track_list({"blues": 30, "rock": 20}), 50)
    assert set(small["shard"]) == {"0-of-1"}


# ----------------------------------------------------------------------- shard files


def tone(path, seconds=6.0, freq=330.0):
    t = np.arange(int(seconds * 22050)) / 22050
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * np.sin(2 * np.pi * 3 * t), 22050)
    return path


@pytest.fixture
def shard_tracks(tmp_path):
    """Three tracks of one shard; the middle one is not audio."""
    good = [tone(tmp_path / "rock" / f"rock.{i:05d}.wav", freq=220.0 + 110 * i) for i in range(2)]
    bad = tmp_path / "rock" / "broken.wav"
    bad.write_text("this is not audio")
    return [("rock/rock.00000", "rock", good[0]), ("rock/broken", "rock", bad),
            ("rock/rock.00001", "rock", good[1])]


@pytest.mark.parametrize("threads", [1, 2])
def test_a_bad_track_is_quarantined_alone(tmp_path, shard_tracks, caplog, threads):
    out = tmp_path / "shards" / "rock" / "0-of-1.h5"
    with caplog.at_level(logging.INFO, logger="genreflow"):
        counts = extract_shard_file(shard_tracks, out, threads=threads)
    assert (counts["ok"], counts["rejected"]) == (2, 1)
    with h5py.File(out) as f:
        assert [t.decode() if isinstance(t, bytes) else t for t in f.attrs["tracks"]] == [t for t, _, _ in shard_tracks]
        for track, _, audio in shard_tracks:
            group = f[track]
            assert group.attrs["track"] == track and group.attrs["source"] == str(audio)
        assert f["rock/broken"].attrs["status"] == "rejected" and "rock/broken" in f
        assert f["rock/broken"].attrs["reason"] and not list(f["rock/broken"])
        for track in ("rock/rock.00000", "rock/rock.00001"):
            assert f[track].attrs["status"] == "ok"
            assert set(f[track]) == set(FRAME_FEATURES)
            assert f[track]["mfcc"].shape == (20, 1 + 6 * 22050 // 512)
    # progress in the job's log: one line per track with the counts so far
    progress = [r.getMessage() for r in caplog.records if "tracks (" in r.getMessage()]
    assert [p.split(": ")[1].split(" tracks")[0] for p in progress] == ["1/3", "2/3", "3/3"]
    assert "(2 accepted, 1 rejected)" in progress[-1]


@pytest.mark.parametrize("threads", [1, 2])
def test_strict_shard_fails_naming_the_file_and_writes_nothing(tmp_path, shard_tracks, threads):
    out = tmp_path / "shards" / "rock" / "0-of-1.h5"
    with pytest.raises(TrackRejected, match="broken.wav"):
        extract_shard_file(shard_tracks, out, strict=True, threads=threads)
    assert list(out.parent.iterdir()) == []


def test_forked_workers_write_the_same_shard_as_one_process(tmp_path, shard_tracks):
    """threads > 1 forks workers; the file is the same, track by track, in the same order."""
    serial, forked = tmp_path / "1.h5", tmp_path / "2.h5"
    extract_shard_file(shard_tracks, serial, threads=1)
    extract_shard_file(shard_tracks, forked, threads=2)  # 3 tracks, 2 workers
    with h5py.File(serial) as a, h5py.File(forked) as b:
        assert list(b.attrs["tracks"]) == list(a.attrs["tracks"])
        for track, _, _ in shard_tracks:
            np.testing.assert_equal(dict(a[track].attrs), dict(b[track].attrs))  # NaN tempo too
            for name in a[track]:
                np.testing.assert_array_equal(a[track][name][()], b[track][name][()])


def test_temporaries_of_a_killed_attempt_are_removed(tmp_path, shard_tracks):
    out = tmp_path / "shards" / "0-of-1.h5"
    out.parent.mkdir()
    stale = out.parent / ".0-of-1.h5.12345.deadbeef.tmp"
    stale.write_bytes(b"half a shard")
    other = out.parent / ".1-of-2.h5.12345.deadbeef.tmp"  # another shard's: not ours
    other.write_bytes(b"")
    extract_shard_file(shard_tracks[:1], out)
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, other.name])


# ---------------------------------------------------------------- SLURM: the job shape


@pytest.mark.parametrize("per_job, jobs", [(None, 1), (500, 2), (50, 16)])
def test_slurm_dry_run_of_1000_tracks_has_at_most_25_extraction_jobs(tmp_path, per_job, jobs):
    """The shape bounds submissions: no job grouping in the profile, and 1000 tracks of 10
    genres are 1 extraction job at the default features.tracks_per_job (1000), 2 at 500,
    16 at 50
    (empty placeholder files: a dry run reads no audio)."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert "groups" not in profile and "group-components" not in profile
    audio = tmp_path / "audio"
    for g in range(10):
        (audio / f"genre{g}").mkdir(parents=True)
        for i in range(100):
            (audio / f"genre{g}" / f"genre{g}.{i:05d}.wav").touch()
    overlay = tmp_path / "folder.yaml"
    settings = {"dataset": {"source": "folder", "folder": str(audio)}}
    if per_job:
        settings["features"] = {"tracks_per_job": per_job}
    overlay.write_text(yaml.safe_dump(settings))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n", "--quiet=rules",
         "results/features/dataset.h5", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path / "work"), "--configfile", str(ROOT / "config.yaml"), str(overlay)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    counts = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    assert counts["extract_features"] == jobs, output[-3000:]
    assert counts["total"] == jobs + 1  # + the merge
    assert "group" not in output.lower()
