"""Networks: every model x input trains on tiny data and writes its outputs; honest scoring.

Tiny on purpose (20 short tracks, few units, two epochs): the whole file runs in about a
minute on 2 cores. Speed is measured in benchmarks/neural.py, not here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("tensorflow")

from genreflow.dataset import FeatureDataset, merge_shards  # noqa: E402
from genreflow.models.architectures import build_network, network_settings  # noqa: E402
from genreflow.examples import SequenceSource  # noqa: E402
from genreflow.examples import make_source as make_input_source  # noqa: E402
from genreflow.jobs import NeuralFamily, run_model_job, vote_tracks  # noqa: E402
from genreflow.models.neural import (  # noqa: E402
    ExampleBatches,
    carve_validation,
    configure_tensorflow,
    train_fold,
)
from genreflow.splits import kfold_split, stratified_split  # noqa: E402
from synthetic_tracks import write_genre_shard


def make_source(settings, dataset_path=None, table_path=None):
    """The source a network job reads (as scripts/train_neural.py makes it)."""
    return make_input_source(
        settings["input"], dataset_path, table_path, settings["segments"], settings["training"]["max_frames"]
    )


def run_network_job(settings, split_csv, outdir, dataset_path=None, table_path=None):
    """One network job as scripts/train_neural.py runs it."""
    extra = {"model": settings["model"], "input": settings["input"]}
    source = make_source(settings, dataset_path, table_path)
    return run_model_job(NeuralFamily(settings), source, split_csv, outdir, extra)

REPO = Path(__file__).resolve().parents[1]
GENRES = ["blues", "classical", "metal", "pop"]
TRACKS_PER_GENRE = 5
N_FRAMES = 300  # ~7 s tracks: short, padded to 1293 frames by the merge

#: Networks shrunk to a few units: the shapes the tests exercise, at a fraction of the cost.
TINY = {
    "epochs": 2,
    "batch_size": 8,
    "patience": 5,
    "monitor": "val_loss",
    "valid_size": 0.15,
    "learning_rate": 0.01,
    "seed": 0,
    "deterministic": True,
    "max_frames": 32,
    "scale": True,
    "architectures": {
        "ann": {"kind": "dense", "units": [16, 8], "dropout": 0.1, "inputs": {"mel": {"units": [8]}}},
        "cnn": {"kind": "conv2d", "filters": [4, 4], "kernels": [3, 1], "pools": [2, 1], "dense": [8]},
        "rnn": {"kind": "simple_rnn", "units": [4, 4], "dense": [8]},
        "lstm": {"kind": "lstm", "units": [4, 4], "dense": [8]},
    },
}
SEGMENTS = {"length": 0.5, "hop": 1.0}  # 22-frame windows every 43 frames: 7 per track
#: The study's model x input grid, plus segment mode and the combined input.
JOBS = [
    ("ann", "all_stats"),
    ("ann", "mfcc"),
    ("ann", "mel"),
    ("cnn", "mfcc"),
    ("cnn", "mel"),
    ("rnn", "mfcc"),
    ("rnn", "mel"),
    ("lstm", "mfcc"),
    ("lstm", "mel"),
    ("cnn", "mel_seg"),
    ("lstm", "mfcc_seg"),
    ("ann", "all_stats_seg"),
    ("cnn", "mfcc+mel"),
    ("lstm", "mfcc+mel_seg"),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """dataset.h5, features.csv and a stratified split.csv of 4 genres x 5 tracks."""
    root = tmp_path_factory.mktemp("tiny")
    specs = [
        (f"{genre}/{genre}.{k:05d}", N_FRAMES - 10 * k, g, None)
        for g, genre in enumerate(GENRES)
        for k in range(TRACKS_PER_GENRE)
    ]
    shard = root / "shards" / "0-of-1.h5"
    write_genre_shard(shard, specs, np.random.default_rng(0))
    paths = {"dataset": root / "dataset.h5", "table": root / "features.csv", "split": root / "split.csv"}
    merge_shards([shard], paths["dataset"], paths["table"], root / "rejected.csv")
    data = FeatureDataset(paths["dataset"])
    stratified_split(data.tracks, data.labels, test_size=0.25, seed=0).to_csv(paths["split"], index=False)
    paths["root"] = root
    return paths


def _settings(model, input_name, **training):
    neural = copy.deepcopy(TINY)
    neural.update(training)
    return network_settings(neural, model, input_name, SEGMENTS)


@pytest.mark.parametrize("model,input_name", JOBS, ids=[f"{m}-{i}" for m, i in JOBS])
def test_every_model_and_input_trains_and_writes_its_outputs(tiny, tmp_path, model, input_name):
    settings = _settings(model, input_name)
    out = tmp_path / model / input_name
    metrics = run_network_job(
        settings, tiny["split"], out, tiny["dataset"], tiny["table"]
    )

    for name in (
        "metrics.json",
        "predictions.csv",
        "confusion.csv",
        "confusion.png",
        "model.keras",
        "history.csv",
        "curves.png",
    ):
        assert (out / name).stat().st_size > 0, name
    written = json.loads((out / "metrics.json").read_text())
    assert written["model"] == model and written["input"] == input_name
    assert written["mode"] == ("segments" if input_name.endswith("_seg") else "track")
    for key in (
        "accuracy",
        "best_cv_score",
        "best_params",
        "fit_seconds",
        "n_train",
        "n_folds",
        "device",
        "epochs_run",
        "best_epoch",
    ):
        assert key in written, key
    assert written["epochs_run"] == 2 and 1 <= written["best_epoch"] <= 2
    assert written["device"] == "CPU"
    assert ("window_accuracy" in written) == input_name.endswith("_seg")

    split = pd.read_csv(tiny["split"])
    test = split.loc[split["part"] == "test", "track"]
    predictions = pd.read_csv(out / "predictions.csv")
    assert sorted(predictions["track"]) == sorted(test)  # every test track scored once
    proba = predictions[[f"p_{g}" for g in GENRES]].to_numpy()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (predictions["predicted"] == np.asarray(GENRES)[proba.argmax(axis=1)]).all()
    history = pd.read_csv(out / "history.csv")
    assert list(history["epoch"]) == [1, 2] and history["val_loss"].notna().all()
    assert metrics["accuracy"] == written["accuracy"]


def test_saved_model_scales_its_own_inputs_and_predicts(tiny, tmp_path):
    import keras

    settings = _settings("cnn", "mel")
    run_network_job(settings, tiny["split"], tmp_path, tiny["dataset"], tiny["table"])
    model = keras.models.load_model(tmp_path / "model.keras")
    assert model.get_layer("scaler") is not None
    assert getattr(model, "optimizer", None) is None  # for prediction: no training state in the file
    source = make_source(settings, tiny["dataset"])
    split = pd.read_csv(tiny["split"])
    test = split.loc[split["part"] == "test", "track"].tolist()
    x = source.read(source.examples(test).index)
    proba = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(x, verbose=0)))
    saved = pd.read_csv(tmp_path / "predictions.csv").set_index("track").loc[test]
    np.testing.assert_allclose(proba, saved[[f"p_{g}" for g in GENRES]].to_numpy(), atol=1e-5)


def test_window_votes_average_probabilities_per_track():
    classes = ["pop", "rock"]
    # track a: two windows lean pop a little, one is sure of rock -> mean says rock
    proba = np.array([[0.6, 0.4], [0.6, 0.4], [0.05, 0.95], [0.1, 0.9], [0.8, 0.2], [0.7, 0.3]])
    tracks = ["a", "a", "a", "b", "b", "b"]
    labels = ["rock", "rock", "rock", "pop", "pop", "pop"]
    votes = vote_tracks(proba, tracks, classes)
    window_accuracy = np.mean(np.asarray(classes)[proba.argmax(axis=1)] == np.asarray(labels))
    assert votes.loc["a", "predicted"] == "rock"  # a majority vote would say pop
    assert votes.loc["b", "predicted"] == "pop"
    np.testing.assert_allclose(votes.loc["a", ["p_pop", "p_rock"]], [1.25 / 3, 1.75 / 3])
    np.testing.assert_allclose(votes.loc["b", ["p_pop", "p_rock"]], [1.6 / 3, 1.4 / 3])
    assert window_accuracy == pytest.approx(3 / 6)  # a: 1 of 3 windows right, b: 2 of 3


def test_windows_are_cut_after_the_split(tiny):
    settings = _settings("cnn", "mel_seg")
    source = make_source(settings, tiny["dataset"])
    split = pd.read_csv(tiny["split"])
    train = split.loc[split["part"] == "train", "track"].tolist()
    examples = source.examples(train)
    assert set(examples.tracks) == set(train)
    n_frames = FeatureDataset(tiny["dataset"]).n_frames
    assert len(examples) == sum((n - 22) // 43 + 1 for n in n_frames[source.data.rows(train)])
    x = source.read(examples.index[:3])
    assert x.shape == (3, 22, 128)
    with h5py.File(tiny["dataset"], "r") as f:
        row, start = examples.index[1]
        np.testing.assert_array_equal(x[1], f["mel"][row, :, start : start + 22].T)


def test_scaler_sees_only_the_training_tracks(tiny, tmp_path):
    """Test tracks get wild values; the fitted scaler must not move."""
    with h5py.File(tiny["dataset"], "r") as f:
        tracks = f["track"].asstr()[()]
    split = pd.read_csv(tiny["split"])
    test = set(split.loc[split["part"] == "test", "track"])
    dataset = tmp_path / "dataset.h5"
    dataset.write_bytes(Path(tiny["dataset"]).read_bytes())
    with h5py.File(dataset, "r+") as f:
        for row in np.flatnonzero([t in test for t in tracks]):
            f["mfcc"][row] = 1e6
    settings = _settings("ann", "mfcc")
    source = make_source(settings, dataset)
    train = split.loc[split["part"] == "train", "track"].tolist()
    fit_ids, valid_ids = carve_validation(train, split.set_index("track").loc[train, "label"], 0.15, 0)
    model, _, _ = train_fold(settings, source, GENRES, fit_ids, valid_ids)
    scaler = model.get_layer("scaler")
    mean, variance = np.asarray(scaler.mean), np.asarray(scaler.variance)

    data = FeatureDataset(dataset)
    rows = data.rows(fit_ids)
    frames = np.concatenate([data.read("mfcc", [r])[0][: min(int(data.n_frames[r]), 32)] for r in rows])
    np.testing.assert_allclose(mean.ravel(), frames.mean(axis=0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(variance.ravel(), frames.var(axis=0), rtol=1e-3)
    assert np.abs(mean).max() < 1e3  # no test value leaked in
    assert not set(valid_ids) & set(fit_ids) and not (set(fit_ids) | set(valid_ids)) & test


def test_combined_input_has_both_parts(tiny):
    for input_name, width in (("mfcc+mel", 32), ("mfcc+mel_seg", 22)):
        settings = _settings("cnn", input_name)
        source = make_source(settings, tiny["dataset"])
        assert source.example_shape == (width, 20 + 128)
        tracks = ["pop/pop.00001", "blues/blues.00003"]
        examples = source.examples(tracks)
        x = source.read(examples.index[:2])
        mfcc = SequenceSource(tiny["dataset"], "mfcc", settings["segments"], 32).read(examples.index[:2])
        mel = SequenceSource(tiny["dataset"], "mel", settings["segments"], 32).read(examples.index[:2])
        np.testing.assert_array_equal(x[..., :20], mfcc)
        np.testing.assert_array_equal(x[..., 20:], mel)
        assert np.abs(mfcc).sum() > 0 and np.abs(mel).sum() > 0
        model = build_network(settings["architecture"], source.example_shape, 4)
        assert model.input_shape == (None, width, 148)


def test_batches_cover_every_example_once_per_epoch_in_a_seeded_order(tiny):
    settings = _settings("lstm", "mfcc_seg")
    source = make_source(settings, tiny["dataset"])
    examples = source.examples(FeatureDataset(tiny["dataset"]).tracks[:6])

    def epoch_orders(seed):
        batches = ExampleBatches(source, examples, GENRES, 5, shuffle=True, seed=seed)
        orders = []
        for _ in range(2):
            seen = [batches[i][0][:, 0, 0] for i in range(len(batches))]
            orders.append(np.concatenate(seen))
            batches.on_epoch_end()
        return orders

    first, second = epoch_orders(1)
    assert len(first) == len(examples)
    all_first = source.read(examples.index)[:, 0, 0]
    assert sorted(first) == sorted(all_first)  # each example exactly once
    assert not np.array_equal(first, second)  # reshuffled between epochs
    np.testing.assert_array_equal(epoch_orders(1)[0], first)  # same seed, same order


def test_two_cpu_runs_give_identical_histories(tiny, tmp_path):
    settings = _settings("cnn", "mfcc")
    for name in ("a", "b"):
        run_network_job(settings, tiny["split"], tmp_path / name, tiny["dataset"], tiny["table"])
    first = pd.read_csv(tmp_path / "a" / "history.csv").drop(columns="seconds")
    second = pd.read_csv(tmp_path / "b" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "predictions.csv"),
        pd.read_csv(tmp_path / "b" / "predictions.csv"),
        check_exact=True,
    )


def test_kfold_scores_every_track_once_and_early_stops(tiny, tmp_path):
    data = FeatureDataset(tiny["dataset"])
    split_csv = tmp_path / "split.csv"
    kfold_split(data.tracks, data.labels, n_folds=2, seed=0).to_csv(split_csv, index=False)
    settings = _settings("ann", "all_stats", epochs=50, patience=1, learning_rate=0.5)
    metrics = run_network_job(
        settings, split_csv, tmp_path / "out", tiny["dataset"], tiny["table"]
    )
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert sorted(predictions["track"]) == sorted(data.tracks)
    assert sorted(predictions["fold"].unique()) == [0, 1]
    assert metrics["n_folds"] == 2 and len(metrics["per_fold"]["epochs_run"]) == 2
    assert max(metrics["per_fold"]["epochs_run"]) < 50  # patience 1 stops long before 50 epochs
    history = pd.read_csv(tmp_path / "out" / "history.csv")
    for fold, best in zip((0, 1), metrics["per_fold"]["best_epoch"]):
        rows = history[history["fold"] == fold]
        assert best == rows.loc[rows["val_loss"].idxmin(), "epoch"]


def test_validation_is_a_stratified_seeded_part_of_training():
    tracks = [f"g{g}/t{i}" for g in range(3) for i in range(10)]
    labels = [t.split("/")[0] for t in tracks]
    fit_ids, valid_ids = carve_validation(tracks, labels, 0.2, seed=3)
    assert len(valid_ids) == 6 and not set(fit_ids) & set(valid_ids)
    assert sorted(fit_ids + valid_ids) == sorted(tracks)
    assert pd.Series([t.split("/")[0] for t in valid_ids]).value_counts().tolist() == [2, 2, 2]
    assert carve_validation(tracks, labels, 0.2, seed=3) == (fit_ids, valid_ids)
    assert carve_validation(tracks, labels, 0.0) == (tracks, [])
    with pytest.raises(ValueError, match="valid_size"):
        carve_validation(["a/1", "b/1", "b/2"], ["a", "b", "b"], 0.5)


def test_settings_merge_per_input_overrides_and_reject_unknown_keys():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    neural = config["neural"]
    mel = network_settings(neural, "ann", "mel")
    mfcc = network_settings(neural, "ann", "mfcc")
    assert mel["architecture"]["units"] != mfcc["architecture"]["units"]
    seg = network_settings(neural, "cnn", "mel_seg", config["segments"])
    assert seg["mode"] == "segments" and seg["segments"] == {"length": 3.0, "hop": 3.0}
    assert (
        seg["architecture"]["activation"]
        == network_settings(neural, "cnn", "mel")["architecture"]["activation"]
    )
    broken = copy.deepcopy(neural)
    broken["architectures"]["lstm"]["layers"] = 3
    with pytest.raises(ValueError, match="layers"):
        network_settings(broken, "lstm", "mfcc")
    with pytest.raises(KeyError, match="gru"):
        network_settings(neural, "gru", "mfcc")
    with pytest.raises(ValueError, match="only kind 'dense'"):
        network_settings(neural, "lstm", "all_stats")


def test_configured_networks_build_at_the_study_sizes():
    """Every model x input of config.yaml builds at full size (1293 frames), untrained."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    shapes = {
        "mfcc": (1293, 20),
        "mel": (1293, 128),
        "mfcc+mel": (1293, 148),
        "all_stats": (70,),
        "mfcc_stats": (40,),
        "musicnn": (200,),
    }
    configure_tensorflow(seed=0)
    for model, inputs in config["neural"]["models"].items():
        for input_name in inputs:
            settings = network_settings(config["neural"], model, input_name, config["segments"])
            shape = shapes[settings["base_input"]]
            if settings["mode"] == "segments" and len(shape) == 2:
                shape = (129, shape[1])
            network = build_network(settings["architecture"], shape, 10)
            assert network.output_shape == (None, 10), (model, input_name)


def test_schema_defaults_match_the_code_defaults():
    """config.schema.yaml fills in missing neural keys; network_settings must agree with it."""
    from genreflow.models.architectures import TRAINING_DEFAULTS

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    properties = schema["properties"]["neural"]["properties"]
    assert {k: properties[k]["default"] for k in TRAINING_DEFAULTS} == TRAINING_DEFAULTS


def test_the_trained_model_is_the_best_validation_epoch(tiny):
    """restore_best_weights: the returned network scores the best epoch's val_loss."""
    settings = _settings("ann", "all_stats", epochs=8, patience=8, learning_rate=0.3)
    split = pd.read_csv(tiny["split"])
    train = split.loc[split["part"] == "train", "track"].tolist()
    fit_ids, valid_ids = carve_validation(train, split.set_index("track").loc[train, "label"], 0.15, 0)
    source = make_source(settings, tiny["dataset"], tiny["table"])
    model, history, facts = train_fold(settings, source, GENRES, fit_ids, valid_ids)
    valid = ExampleBatches(source, source.examples(valid_ids), GENRES, 8)
    loss = model.evaluate(valid, verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(history["val_loss"].min(), rel=1e-4)
    assert facts["best_epoch"] == history.loc[history["val_loss"].idxmin(), "epoch"]
    assert facts["best_cv_score"] == history.loc[history["val_loss"].idxmin(), "val_accuracy"]
