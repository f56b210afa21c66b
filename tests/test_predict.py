"""`genreflow predict` and model provenance, on the models of the shared tiny workflow run."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from genreflow.constants import SR
from genreflow.demo import generate_track
from genreflow.predict import EXCERPT_SAMPLES, excerpt_spans, load_trained, predict_files
from genreflow.provenance import UntrustedModelError

pytestmark = pytest.mark.workflow
# classic and network, whole-track and windows (tests/config/tiny.yaml trains them)
MODELS = ["logreg/all_stats", "rf/all_stats_seg", "lstm/mfcc", "cnn/mel_seg", "logreg/musicnn", "ann/musicnn_seg"]


def model_dir(run, name):
    return run / "results" / "models" / name


def test_excerpts_of_long_and_short_tracks():
    assert excerpt_spans(30 * SR) == [(0, 30 * SR)]  # a GTZAN track is one excerpt
    spans = excerpt_spans(2 * EXCERPT_SAMPLES + 3 * SR)  # the 3 s tail is too short
    assert spans == [(0, EXCERPT_SAMPLES), (EXCERPT_SAMPLES, 2 * EXCERPT_SAMPLES)]


@pytest.mark.parametrize("name", MODELS)
def test_predictions_on_test_tracks_equal_the_jobs_own(tiny_run, name):
    folder = model_dir(tiny_run, name)
    expected = pd.read_csv(folder / "predictions.csv")
    paths = [tiny_run / "resources" / "demo" / f"{track}.wav" for track in expected["track"]]
    files, timeline, errors = predict_files(load_trained(folder), paths)
    assert errors == {}
    files = files.set_index("file").loc[[str(p) for p in paths]]
    assert list(files["genre"]) == list(expected["predicted"])
    genres = [c for c in expected.columns if c.startswith("p_")]
    np.testing.assert_allclose(files[genres].to_numpy(), expected[genres].to_numpy(), atol=1e-5)
    windows = timeline.groupby("file").size()
    assert (windows > 1).all() if name.endswith("_seg") else (windows == 1).all()


def test_any_rate_channels_and_format_are_classified(tiny_run, tmp_path):
    y, _ = librosa.load(tiny_run / "resources" / "demo" / "metal" / "metal.00000.wav", sr=SR)
    stereo = librosa.resample(y, orig_sr=SR, target_sr=44100)
    sf.write(tmp_path / "stereo.wav", np.stack([stereo, 0.5 * stereo], axis=1), 44100)
    sf.write(tmp_path / "track.mp3", y, SR, format="MP3")
    files, _, errors = predict_files(load_trained(model_dir(tiny_run, "logreg/all_stats")), sorted(tmp_path.iterdir()))
    assert errors == {} and len(files) == 2
    assert set(files["genre"]) <= set(load_trained(model_dir(tiny_run, "logreg/all_stats")).classes)


def test_timeline_switches_genre_near_the_join(tiny_run, tmp_path):
    trained = load_trained(model_dir(tiny_run, "rf/all_stats_seg"))
    first, second = "classical", "metal"
    joined = np.concatenate([generate_track(first, 90, duration=15.0), generate_track(second, 90, duration=15.0)])
    sf.write(tmp_path / "joined.wav", joined, SR)
    _, timeline, errors = predict_files(trained, [tmp_path / "joined.wav"])
    assert errors == {}
    before = timeline[timeline["end"] <= 15.0]["genre"]
    after = timeline[timeline["start"] >= 15.0]["genre"]
    assert before.mode()[0] == first and after.mode()[0] == second


def test_bad_files_are_reported_and_the_rest_classified(tiny_run, tmp_path):
    good = tiny_run / "resources" / "demo" / "jazz" / "jazz.00000.wav"
    (tmp_path / "noise.wav").write_bytes(b"not audio at all")
    sf.write(tmp_path / "short.wav", np.zeros(SR), SR)
    result = subprocess.run(
        [sys.executable, "-m", "genreflow", "predict", str(good), str(tmp_path / "noise.wav"),
         str(tmp_path / "short.wav"), "--model", str(model_dir(tiny_run, "logreg/all_stats")), "--format", "csv"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    rows = pd.read_csv(pd.io.common.StringIO(result.stdout))
    assert list(rows["file"]) == [str(good)] and rows.columns.tolist() == ["file", "genre", "probability", "top 3"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("genreflow predict:")]
    assert len(errors) == 2 and "noise.wav" in errors[0] + errors[1] and "short.wav" in errors[0] + errors[1]


def test_a_tampered_model_folder_is_refused(tiny_run, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir(tiny_run, "logreg/all_stats"), folder)
    with open(folder / "model.joblib", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(UntrustedModelError, match="model.joblib differs from the SHA-256.*--trust"):
        load_trained(folder)
    result = subprocess.run(
        [sys.executable, "-m", "genreflow", "predict", str(folder), "--model", str(folder)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "--trust" in result.stderr
    (folder / "manifest.json").unlink()
    with pytest.raises(UntrustedModelError, match="no manifest.json"):
        load_trained(folder)


def test_models_record_where_they_came_from(tiny_run):
    folder = model_dir(tiny_run, "lstm/mfcc")
    metrics = json.loads((folder / "metrics.json").read_text())
    provenance = metrics["provenance"]
    split = tiny_run / "results" / "splits" / "split.csv"
    assert provenance["inputs"]["split"]["sha256"] == hashlib.sha256(split.read_bytes()).hexdigest()
    assert {"numpy", "scikit-learn", "keras", "genreflow"} <= set(provenance["versions"])
    assert len(provenance["git"]["commit"]) == 40 and isinstance(provenance["git"]["dirty"], bool)
    assert provenance["settings"]["settings"]["architecture"]["kind"] == "lstm"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["device"] == metrics["device"] == "CPU" and manifest["input"] == "mfcc"
    assert manifest["analysis"]["sr"] == SR and manifest["classes"] == sorted(manifest["classes"])
    summary = (tiny_run / "results" / "report" / "summary.md").read_text()
    assert f"genreflow commit {provenance['git']['commit'][:12]}" in summary


def test_the_predict_rule_classifies_a_folder(tiny_run, tmp_path):
    from workflow import TINY, overlay, run_snakemake

    settings = {"predict": {"model": "results/models/rf/all_stats_seg", "audio": "resources/demo/metal"}}
    configfiles = (TINY, overlay(tmp_path, settings))
    plan = run_snakemake(tiny_run, "-n", "--quiet=rules", configfiles=configfiles).stdout
    assert "predict_shard" in plan and "train_classic" not in plan  # the model exists: only prediction runs
    run_snakemake(tiny_run, "--cores", "2", "results/predictions/rf_all_stats_seg.csv", configfiles=configfiles)
    table = pd.read_csv(tiny_run / "results/predictions/rf_all_stats_seg.csv", keep_default_na=False)
    audio = sorted((tiny_run / "resources/demo/metal").glob("*.wav"))
    assert sorted(table["file"]) == sorted(f"resources/demo/metal/{p.name}" for p in audio)
    files, _, _ = predict_files(load_trained(model_dir(tiny_run, "rf/all_stats_seg")), audio)
    assert list(table.sort_values("file")["genre"]) == list(files.sort_values("file")["genre"])
    assert (table["error"] == "").all()
