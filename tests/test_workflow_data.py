"""The data half of the workflow, run for real on a tiny demo set: config validation,
the DAG, HDF5 outputs, sources through Snakemake, and kill-and-rerun of extraction shards."""

import hashlib
import os
import signal
import subprocess
import tarfile
import time

import h5py
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genreflow.constants import GTZAN_GENRES
from genreflow.sources import shard_index
from workflow import TINY, overlay, planned_jobs, run_snakemake, snakemake_command

pytestmark = pytest.mark.workflow
N_TRACKS = 40  # tests/config/tiny.yaml: 10 genres x 4
N_GENRES = 10  # ... 40 tracks: one shard (features.tracks_per_job 50)


@pytest.mark.parametrize(
    "config, message",
    [
        (["dataset={'source': 'demo', 'sourc': 1}"], "sourc"),
        (["split={'method': 'random'}"], "random"),
        (["features={'min_duration': 'long'}"], "min_duration"),
    ],
)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, config, message):
    result = run_snakemake(tmp_path, "-n", config=config, check=False)
    assert result.returncode != 0
    assert message in result.stdout
    assert not (tmp_path / "results").exists()


def test_missing_folder_is_named_with_its_key(tmp_path):
    result = run_snakemake(tmp_path, "-n", config=["dataset={'source': 'folder', 'folder': 'no/such/dir'}"], check=False)
    assert result.returncode != 0
    assert "dataset.folder" in result.stdout and "no/such/dir" in result.stdout


def test_dry_run_has_one_job_per_shard_and_per_demo_genre(tmp_path):
    jobs = planned_jobs(tmp_path, "results/splits/split.csv")
    assert jobs == {"make_demo_audio": N_GENRES, "extract_features": 1, "merge_features": 1, "make_split": 1}
    # features.tracks_per_job 1: 40 tracks -> 32 hash shards, of which the names fill 25
    small = overlay(tmp_path, {"features": {"tracks_per_job": 1}})
    jobs = planned_jobs(tmp_path, "results/splits/split.csv", configfiles=(TINY, small))
    shards = {shard_index(f"{g}/{g}.{i:05d}", 32) for g in GTZAN_GENRES for i in range(4)}
    assert jobs["extract_features"] == len(shards) > 2 * N_GENRES


@pytest.fixture(scope="module")
def data_run(tiny_run):
    return tiny_run


def test_demo_data_stage_outputs(data_run):
    features = pd.read_csv(data_run / "results/features/features.csv")
    assert len(features) == N_TRACKS
    assert pd.read_csv(data_run / "results/features/rejected.csv").empty
    assert np.isfinite(features.drop(columns=["filename", "label", "track"]).to_numpy()).all()
    with h5py.File(data_run / "results/features/dataset.h5") as f:
        assert f["mfcc"].shape == (N_TRACKS, 1293, 20)
        assert f["mel"].shape == (N_TRACKS, 128, 1293)
        # 8 s of audio: 345 real frames, the rest zero padding
        assert set(f["n_frames"][()]) == {1 + 8 * 22050 // 512}
        assert 0 <= f["mel"][0].min() and f["mel"][0].max() <= 1
    split = pd.read_csv(data_run / "results/splits/split.csv")
    assert (pd.crosstab(split["label"], split["part"])["test"] == 1).all()
    # every job leaves a log; an extraction job's says how far it got, track by track
    logs = sorted((data_run / "results/logs/extract_features").rglob("*.log"))
    assert len(logs) == 1
    assert logs[0].relative_to(data_run / "results/logs/extract_features").as_posix() == "0-of-1.log"
    text = logs[0].read_text()
    assert all(f"extracted blues/blues.{i:05d}" in text for i in range(4))
    assert "40/40 tracks (40 accepted, 0 rejected)" in text


def test_demo_tempi_follow_the_genre_styles(data_run):
    tempo = pd.read_csv(data_run / "results/features/features.csv").groupby("label")["tempo"].median()
    # metal is generated at 150-190 bpm, reggae at 65-85 (librosa may report double time)
    assert tempo["metal"] > tempo["reggae"]


def test_nothing_is_rerun_when_complete(data_run):
    assert planned_jobs(data_run) == {}


def write_tracks(root, genres=("blues", "rock"), n=3, seconds=6.0):
    for genre in genres:
        for i in range(n):
            y = np.sin(2 * np.pi * (220 + 30 * i + 200 * (genre == "rock")) * np.arange(int(seconds * 22050)) / 22050)
            path = root / genre / f"{genre}.{i:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, 0.3 * y, 22050)


def test_download_source_through_the_workflow(tmp_path):
    write_tracks(tmp_path / "src" / "genres")
    archive = tmp_path / "genres.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "genres", arcname="genres")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    workdir = tmp_path / "work"
    settings = overlay(tmp_path, {"dataset": {"source": "download", "download": {"url": archive.as_uri(), "sha256": digest}},
                                  "split": {"method": "kfold", "n_folds": 2}})
    run_snakemake(workdir, "--cores", "2", "results/splits/split.csv", configfiles=(TINY, settings))
    split = pd.read_csv(workdir / "results/splits/split.csv")
    assert sorted(split["track"]) == [f"{g}/{g}.{i:05d}" for g in ("blues", "rock") for i in range(3)]
    assert set(split["part"]) == {"cv"}


def test_manifest_source_quarantines_a_bad_track(tmp_path):
    write_tracks(tmp_path / "audio")
    (tmp_path / "audio" / "rock" / "broken.wav").write_text("this is not audio")
    rows = [(f"audio/{g}/{g}.{i:05d}.wav", g) for g in ("blues", "rock") for i in range(3)]
    rows.append(("audio/rock/broken.wav", "rock"))
    pd.DataFrame(rows, columns=["path", "label"]).to_csv(tmp_path / "tracks.csv", index=False)
    workdir = tmp_path / "work"
    settings = {"dataset": {"source": "manifest", "manifest": str(tmp_path / "tracks.csv")},
                "split": {"method": "kfold", "n_folds": 2}}
    run_snakemake(workdir, "--cores", "2", "results/splits/split.csv", configfiles=(TINY, overlay(tmp_path, settings)))
    rejected = pd.read_csv(workdir / "results/features/rejected.csv")
    assert rejected["track"].tolist() == ["rock/broken"]
    assert len(pd.read_csv(workdir / "results/features/features.csv")) == 6
    # the broken file shared its shard with the other rock tracks: they are in dataset.h5
    with h5py.File(workdir / "results/features/shards/0-of-1.h5") as shard:
        assert sorted(shard["rock"]) == ["broken", "rock.00000", "rock.00001", "rock.00002"]
    with h5py.File(workdir / "results/features/dataset.h5") as f:
        assert [t for t in f["track"].asstr()[()] if t.startswith("rock/")] == [f"rock/rock.{i:05d}" for i in range(3)]
    # strict mode fails naming the file
    result = run_snakemake(workdir, "--cores", "1", "--forcerun=extract_features", "results/features/features.csv",
                           configfiles=(TINY, overlay(tmp_path, {**settings, "features": {"strict": True}}, "strict.yaml")),
                           check=False)
    assert result.returncode != 0 and "broken.wav" in result.stdout


def read_dataset(path):
    with h5py.File(path) as f:
        arrays = {name: f[name][()] for name in f}
        attrs = {name: {k: np.asarray(v).tolist() for k, v in f[name].attrs.items()} for name in f}
        attrs["/"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
    return arrays, attrs


def test_killed_extraction_redoes_only_unfinished_shards(tmp_path):
    """SIGKILL to Snakemake and its jobs (the process group) mid-extraction, rerun: the run
    completes, finished shards are kept, dataset.h5 equals an uninterrupted run's."""
    write_tracks(tmp_path / "audio", n=6)  # 2 genres x 6 tracks
    # tracks_per_job 1: 12 tracks -> 8 hash shards, all filled by these names
    settings = overlay(tmp_path, {"dataset": {"source": "folder", "folder": str(tmp_path / "audio")},
                                  "features": {"tracks_per_job": 1}})
    configs = (TINY, settings)
    target = "results/features/dataset.h5"
    reference = tmp_path / "reference"
    run_snakemake(reference, "--cores", "2", target, configfiles=configs)
    n_shards = len(list((reference / "results/features/shards").rglob("*.h5")))
    assert n_shards == 8 == len({shard_index(f"{g}/{g}.{i:05d}", 8) for g in ("blues", "rock") for i in range(6)})

    work = tmp_path / "work"
    log = tmp_path / "killed.log"
    with open(log, "w") as sink:  # one job at a time: kill while the second shard runs
        process = subprocess.Popen(snakemake_command(work, "--cores", "1", target, configfiles=configs),
                                   stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and "(Rule: extract_features)" not in log.read_text():
        assert process.poll() is None, log.read_text()[-3000:]
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    shards = work / "results/features/shards"
    kept = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in shards.rglob("*.h5")}
    assert 1 <= len(kept) < n_shards
    for path in kept:  # complete shard files only: each is written atomically
        with h5py.File(path) as f:
            assert len(f.attrs["tracks"]) >= 1 and all(t in f for t in f.attrs["tracks"])
    assert not (work / target).exists()

    jobs = planned_jobs(work, "--rerun-incomplete", target, configfiles=configs)
    # the shards without a file, plus at most the one (--cores 1) whose file was written
    # but whose job Snakemake had not yet recorded as finished when it was killed
    assert n_shards - len(kept) <= jobs["extract_features"] <= n_shards - len(kept) + 1
    run_snakemake(work, "--unlock", configfiles=configs)  # a killed Snakemake leaves its lock
    run_snakemake(work, "--cores", "2", target, configfiles=configs)
    unchanged = [p for p in kept if (p.stat().st_ino, p.stat().st_mtime_ns) == kept[p]]
    assert len(unchanged) == n_shards - jobs["extract_features"] >= 1
    assert not [p for p in shards.rglob("*") if p.name.endswith(".tmp")]  # no temp file left
    arrays, attrs = read_dataset(work / target)
    expected, expected_attrs = read_dataset(reference / target)
    assert arrays.keys() == expected.keys() and attrs == expected_attrs
    for name in expected:
        np.testing.assert_array_equal(arrays[name], expected[name], err_msg=name)
