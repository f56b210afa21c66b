"""The whole workflow on the tiny demo: the report matches the model files, and partial
reruns touch only what they must."""

import json
import shutil

import pandas as pd
import pytest

from workflow import TINY, overlay, planned_jobs

pytestmark = pytest.mark.workflow
MODELS = [("knn", "mfcc_stats"), ("knn", "all_stats"), ("logreg", "all_stats"), ("logreg", "musicnn"),
          ("rf", "all_stats_seg"), ("ann", "all_stats"), ("ann", "musicnn_seg"), ("cnn", "mel_seg"), ("lstm", "mfcc")]


def test_every_configured_model_reports_held_out_accuracy(tiny_run):
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    assert sorted(zip(summary["model"], summary["input"])) == sorted(MODELS)
    for model, name in MODELS:
        folder = tiny_run / "results/models" / model / name
        predictions = pd.read_csv(folder / "predictions.csv")
        metrics = json.loads((folder / "metrics.json").read_text())
        recomputed = (predictions["true"] == predictions["predicted"]).mean()
        row = summary[(summary["model"] == model) & (summary["input"] == name)].iloc[0]
        assert row["accuracy"] == pytest.approx(recomputed) == pytest.approx(metrics["accuracy"])
        # scored on the 10 held-out tracks only
        split = pd.read_csv(tiny_run / "results/splits/split.csv")
        assert sorted(predictions["track"]) == sorted(split.loc[split["part"] == "test", "track"])
        assert (folder / "confusion.png").stat().st_size > 0
    assert (tiny_run / "results/report/summary.md").read_text().count("|") > 20
    assert (tiny_run / "results/report/confusion_matrices.png").exists()


def test_demo_is_learnable_well_above_chance(tiny_run):
    summary = pd.read_csv(tiny_run / "results/report/summary.csv")
    # 10 genres: chance is 10%; even 3 training tracks per genre separate the demo styles
    assert summary["accuracy"].max() >= 0.6


def test_one_model_output_runs_only_that_model(tiny_run, tmp_path):
    work = tmp_path / "copy"
    shutil.copytree(tiny_run, work, symlinks=True)
    shutil.rmtree(work / "results/models/knn/all_stats")
    assert planned_jobs(work, "results/models/knn/all_stats/metrics.json") == {"train_classic": 1}
    # the default target also redoes the report, nothing else
    assert planned_jobs(work) == {"train_classic": 1, "report": 1, "all": 1}


def test_editing_one_models_grid_reruns_only_that_model(tiny_run):
    edited = overlay(tiny_run.parent, {"classic": {"grids": {"knn": {"n_neighbors": [3, 5]}}}}, "knn-grid.yaml")
    jobs = planned_jobs(tiny_run, configfiles=(TINY, edited))
    # both knn inputs and the report; never extraction or the other models
    assert jobs == {"train_classic": 2, "report": 1, "all": 1}
