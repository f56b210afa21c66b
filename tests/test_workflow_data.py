"""The data half of the workflow, run for real on a tiny demo set: config validation,
the DAG, HDF5 outputs, sources through Snakemake, and kill-and-rerun of extraction."""

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

from workflow import TINY, overlay, planned_jobs, run_snakemake, snakemake_command

pytestmark = pytest.mark.workflow
N_TRACKS = 40  # tests/config/tiny.yaml: 10 genres x 4


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


def test_dry_run_has_one_job_per_track(tmp_path):
    jobs = planned_jobs(tmp_path, "results/splits/split.csv")
    assert jobs == {"make_demo_track": N_TRACKS, "extract_features": N_TRACKS, "merge_features": 1, "make_split": 1}


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
    # every job leaves a log
    assert len(list((data_run / "results/logs/extract_features").rglob("*.log"))) == N_TRACKS


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
    # strict mode fails naming the file
    result = run_snakemake(workdir, "--cores", "1", "--forcerun=extract_features", "results/features/features.csv",
                           configfiles=(TINY, overlay(tmp_path, {**settings, "features": {"strict": True}}, "strict.yaml")),
                           check=False)
    assert result.returncode != 0 and "broken.wav" in result.stdout


def test_killed_extraction_redoes_only_unfinished_tracks(tmp_path):
    n_tracks = 20
    small = overlay(tmp_path.parent, {"dataset": {"demo": {"tracks_per_genre": 2}}}, f"{tmp_path.name}.yaml")

    def run(*args):
        return run_snakemake(tmp_path, *args, configfiles=(TINY, small))

    # audio first, so the killed run is only extraction
    run("--cores", "2", "--until=make_demo_track", "results/features/features.csv")
    tracks_dir = tmp_path / "results/features/tracks"
    command = snakemake_command(tmp_path, "--cores", "2", "results/features/features.csv", configfiles=(TINY, small))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(tracks_dir.rglob("*.h5"))) < 4:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done = {p: p.stat().st_mtime_ns for p in tracks_dir.rglob("*.h5")}
    assert 4 <= len(done) < n_tracks
    for path in done:  # complete, readable files only: writes are atomic
        with h5py.File(path) as f:
            assert f.attrs["status"] == "ok" and "mfcc" in f
    jobs = planned_jobs(tmp_path, "--rerun-incomplete", "results/features/features.csv", configfiles=(TINY, small))
    # the tracks without a file, plus at most the 2 (--cores) whose files were written
    # but whose jobs Snakemake had not yet recorded as finished when it was killed
    assert n_tracks - len(done) <= jobs["extract_features"] <= n_tracks - len(done) + 2
    run("--unlock")  # a killed Snakemake leaves its lock, as on a cluster
    run("--cores", "2", "--rerun-incomplete", "results/features/features.csv")
    unchanged = [p for p in done if p.stat().st_mtime_ns == done[p]]
    assert len(unchanged) == n_tracks - jobs["extract_features"]
    assert len(list(tracks_dir.rglob("*.h5"))) == n_tracks
