"""The musicnn inputs: extraction into shard files, the merge into dataset.h5, the
``musicnn`` / ``musicnn_seg`` sources, a classic and a network job on them, short tracks,
and the config key ``features.embedding.model``.

The source and job tests use a shard file with made-up embeddings (no TensorFlow for
the classic one); the extraction tests run the real network and need the weights
(``musicnn==0.1.0``, which ``make venv`` installs).
"""

from __future__ import annotations

import importlib.util
import json

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from genreflow.constants import (
    EMBEDDING_GROUP,
    MUSICNN_MAX_WINDOWS,
    MUSICNN_WINDOW_SECONDS,
    SR,
)
from genreflow.dataset import FeatureDataset, merge_shards
from genreflow.examples import EmbeddingSource, make_source
from genreflow.features import FRAME_FEATURES, extract_shard_file
from genreflow.jobs import ClassicFamily, run_model_job
from genreflow.splits import stratified_split
from synthetic_tracks import write_genre_shard
from workflow import ROOT, TINY, overlay, planned_jobs, run_snakemake

GENRES = ["blues", "classical", "metal", "pop"]
TRACKS_PER_GENRE = 5
#: windows of each track, by its index in its genre: a short track (none), a long one
#: (more than dataset.h5 keeps), and 30-s ones
WINDOWS = [0, 12, 10, 10, 10]

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason="the musicnn weights are not installed (pip install --no-deps musicnn==0.1.0; `make venv` does it)",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """dataset.h5 (with musicnn), features.csv and a stratified split.csv of 4 x 5 tracks."""
    root = tmp_path_factory.mktemp("musicnn_tiny")
    specs = [
        (f"{genre}/{genre}.{k:05d}", 300, 2 * g, WINDOWS[k])
        for g, genre in enumerate(GENRES)
        for k in range(TRACKS_PER_GENRE)
    ]
    shard = root / "shards" / "0-of-1.h5"
    write_genre_shard(shard, specs, np.random.default_rng(0))
    paths = {"dataset": root / "dataset.h5", "table": root / "features.csv", "split": root / "split.csv"}
    merge_shards([shard], paths["dataset"], paths["table"], root / "rejected.csv")
    data = FeatureDataset(paths["dataset"])
    # test: the short track (index 0, scored by no musicnn model) and index 4 of each genre
    split = stratified_split(data.tracks, data.labels, test_size=0.25, seed=0)
    test = split["track"].str.endswith((".00000", ".00004"))
    split["part"] = np.where(test, "test", "train")
    split.to_csv(paths["split"], index=False)
    paths["shard"] = shard
    return paths


def test_merge_stores_the_first_30_s_of_windows_and_their_count(tiny):
    with h5py.File(tiny["dataset"]) as f, h5py.File(tiny["shard"]) as shard:
        track = shard["blues/blues.00001"]
        assert f[EMBEDDING_GROUP].shape == (len(GENRES) * TRACKS_PER_GENRE, MUSICNN_MAX_WINDOWS, 200)
        assert f[EMBEDDING_GROUP].dtype == np.float32 and f[EMBEDDING_GROUP].attrs["model"] == "MSD_musicnn"
        counts = f["n_musicnn_windows"][()]
        assert counts.tolist() == [min(n, MUSICNN_MAX_WINDOWS) for n in WINDOWS] * len(GENRES)
        # row 1 is blues.00001, 12 windows: the first 10 kept
        np.testing.assert_array_equal(f[EMBEDDING_GROUP][1], track[EMBEDDING_GROUP]["penultimate"][:10])
        assert not f[EMBEDDING_GROUP][0].any()  # no window: all padding


def test_track_source_gives_the_mean_of_each_tracks_windows(tiny):
    source = make_source("musicnn", tiny["dataset"], tiny["table"])
    assert isinstance(source, EmbeddingSource) and source.segments is None
    tracks = ["blues/blues.00000", "blues/blues.00001", "pop/pop.00003"]
    examples = source.examples(tracks)
    assert list(examples.tracks) == tracks[1:]  # the short track has no window: no example
    assert list(examples.labels) == ["blues", "pop"]
    x = source.read(examples.index)
    assert x.shape == (2, 200) and x.dtype == np.float32 and source.example_shape == (200,)
    with h5py.File(tiny["shard"]) as f:
        expected = f["blues/blues.00001"][EMBEDDING_GROUP]["penultimate"][:10].mean(axis=0)
    np.testing.assert_allclose(x[0], expected, rtol=1e-6, atol=1e-6)


def test_window_source_gives_one_example_per_window_at_musicnns_own_windows(tiny):
    # the segments config is for frame inputs: musicnn's windows are its own
    source = make_source("musicnn_seg", tiny["dataset"], segments={"length": 1.0, "hop": 0.5})
    assert source.segments == {"length": MUSICNN_WINDOW_SECONDS, "hop": MUSICNN_WINDOW_SECONDS}
    tracks = ["metal/metal.00000", "metal/metal.00002", "metal/metal.00001"]
    examples = source.examples(tracks)
    assert list(examples.tracks) == ["metal/metal.00002"] * 10 + ["metal/metal.00001"] * 10
    starts = source.window_starts(tracks)
    np.testing.assert_allclose(starts[:3], [0, MUSICNN_WINDOW_SECONDS, 2 * MUSICNN_WINDOW_SECONDS])
    with h5py.File(tiny["shard"]) as f:
        windows = f["metal/metal.00001"][EMBEDDING_GROUP]["penultimate"][:10]
        np.testing.assert_array_equal(source.read(examples.index[10:]), windows)
    mean, variance = source.fit_scaler(tracks)
    assert mean.shape == variance.shape == (200,)


def test_an_input_that_no_track_is_long_enough_for_says_what_to_do(tiny):
    source = make_source("musicnn", tiny["dataset"], tiny["table"])
    with pytest.raises(ValueError, match="min_duration"):
        source.examples(["blues/blues.00000", "pop/pop.00000"])


def test_a_dataset_without_embeddings_names_the_config_key(tmp_path, tiny):
    path = tmp_path / "0-of-1.h5"
    write_genre_shard(path, [("blues/blues.00000", 300, 0, None)], np.random.default_rng(1))
    with h5py.File(path) as f:  # extracted with features.embedding.model: none
        assert EMBEDDING_GROUP not in f["blues/blues.00000"]
        assert f["blues/blues.00000"].attrs["embedding"] == "none"
    merge_shards([path], tmp_path / "dataset.h5", tmp_path / "features.csv", tmp_path / "rejected.csv")
    with h5py.File(tmp_path / "dataset.h5") as f:
        assert EMBEDDING_GROUP not in f and "n_musicnn_windows" not in f
    with pytest.raises(ValueError, match="features.embedding.model"):
        make_source("musicnn", tmp_path / "dataset.h5")


def test_classic_job_on_musicnn_scores_every_test_track_with_a_window(tiny, tmp_path):
    source = make_source("musicnn", tiny["dataset"], tiny["table"])
    family = ClassicFamily("logreg", {"C": [0.1, 1.0]}, cv_folds=3, seed=0, threads=1)
    metrics = run_model_job(family, source, tiny["split"], tmp_path, {"model": "logreg", "input": "musicnn"})
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    split = pd.read_csv(tiny["split"])
    scored = split.loc[(split["part"] == "test") & ~split["track"].str.endswith(".00000"), "track"]
    assert sorted(predictions["track"]) == sorted(scored)  # the short tracks are not scored
    assert metrics["mode"] == "track" and metrics["n_train"] == 12
    # the made-up embeddings separate the genres by level: a linear model gets them all
    assert metrics["accuracy"] == 1.0


def test_network_job_on_musicnn_seg_votes_windows_per_track(tiny, tmp_path):
    pytest.importorskip("tensorflow")
    from genreflow.jobs import NeuralFamily
    from genreflow.models.architectures import network_settings

    neural = {"epochs": 2, "batch_size": 16, "patience": 2, "learning_rate": 0.01, "threads": 1,
              "architectures": {"ann": {"kind": "dense", "units": [8], "dropout": 0.0}}}
    settings = network_settings(neural, "ann", "musicnn_seg", {"length": 3.0, "hop": 3.0})
    source = make_source("musicnn_seg", tiny["dataset"], tiny["table"], settings["segments"])
    metrics = run_model_job(NeuralFamily(settings), source, tiny["split"], tmp_path,
                            {"model": "ann", "input": "musicnn_seg"})
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["mode"] == "segments" and "window_accuracy" in written
    assert written["segments"] == {"length": MUSICNN_WINDOW_SECONDS, "hop": MUSICNN_WINDOW_SECONDS}
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert len(predictions) == 4 and metrics["accuracy"] == written["accuracy"]  # one test track a genre


def test_only_dense_networks_take_musicnn():
    from genreflow.models.architectures import network_settings

    neural = {"architectures": {"ann": {"kind": "dense"}, "cnn": {"kind": "conv2d"}}}
    assert network_settings(neural, "ann", "musicnn")["base_input"] == "musicnn"
    with pytest.raises(ValueError, match="only kind 'dense'"):
        network_settings(neural, "cnn", "musicnn_seg", {"length": 3.0, "hop": 3.0})


# --- the real network, in the extraction ------------------------------------------------


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Two 7-s generated tracks and a 2-s one (shorter than one musicnn window)."""
    import soundfile as sf

    from genreflow.demo import generate_track

    root = tmp_path_factory.mktemp("musicnn_audio")
    tracks = []
    for genre, seconds in (("metal", 7.0), ("classical", 7.0), ("jazz", 2.0)):
        path = root / genre / f"{genre}.00000.wav"
        path.parent.mkdir(parents=True)
        sf.write(path, generate_track(genre, 0, duration=seconds), SR, subtype="PCM_16")
        tracks.append((f"{genre}/{genre}.00000", genre, path))
    return tracks


@needs_weights
def test_extraction_stores_musicnn_windows_and_keeps_the_frame_features(audio, tmp_path):
    from genreflow.audio import load_audio
    from genreflow.embeddings import embed

    # a min_duration below one window: the 2-s track is accepted with no window
    extract_shard_file(audio, tmp_path / "with.h5", min_duration=1.0, embedding="MSD_musicnn", threads=1)
    extract_shard_file(audio, tmp_path / "without.h5", min_duration=1.0)
    with h5py.File(tmp_path / "with.h5") as f, h5py.File(tmp_path / "without.h5") as g:
        for track, _, path in audio:
            assert f[track].attrs["status"] == "ok" and f[track].attrs["embedding"] == "MSD_musicnn"
            for name in FRAME_FEATURES:  # the feature kernel's numbers do not change
                np.testing.assert_array_equal(f[track][name][()], g[track][name][()])
            assert EMBEDDING_GROUP not in g[track] and g[track].attrs["embedding"] == "none"
            expected = embed(load_audio(path, sr=SR)[0], SR, "MSD_musicnn")
            for output, rows in expected.items():
                np.testing.assert_allclose(f[track][EMBEDDING_GROUP][output][()], rows, rtol=1e-5, atol=1e-6)
        assert f["metal/metal.00000"][EMBEDDING_GROUP]["penultimate"].shape == (2, 200)
        assert f["jazz/jazz.00000"][EMBEDDING_GROUP]["penultimate"].shape == (0, 200)
    merge_shards([tmp_path / "with.h5"], tmp_path / "dataset.h5", tmp_path / "features.csv", tmp_path / "rej.csv")
    with h5py.File(tmp_path / "dataset.h5") as f:
        assert f["track"].asstr()[()].tolist() == ["classical/classical.00000", "jazz/jazz.00000", "metal/metal.00000"]
        assert f["n_musicnn_windows"][()].tolist() == [2, 0, 2]
    # the 2-s track: no example, its shard-mates are read
    examples = make_source("musicnn_seg", tmp_path / "dataset.h5").examples(["jazz/jazz.00000", "metal/metal.00000"])
    assert list(examples.tracks) == ["metal/metal.00000"] * 2


def test_merge_refuses_shards_extracted_with_different_models(tmp_path):
    rng = np.random.default_rng(2)
    files = [tmp_path / "0-of-2.h5", tmp_path / "1-of-2.h5"]
    write_genre_shard(files[0], [("blues/blues.00000", 300, 0, 2)], rng)
    write_genre_shard(files[1], [("pop/pop.00000", 300, 0, 2)], rng)
    with h5py.File(files[1], "a") as f:
        f["pop/pop.00000"].attrs["embedding"] = "MTT_musicnn"
    with pytest.raises(ValueError, match="different features.embedding.model"):
        merge_shards(files, tmp_path / "dataset.h5", tmp_path / "features.csv", tmp_path / "rejected.csv")


# --- the config key and the workflow's wiring (dry runs) -----------------------------------


def test_config_default_and_schema_agree():
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    key = schema["properties"]["features"]["properties"]["embedding"]["properties"]["model"]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert key["default"] == config["features"]["embedding"]["model"] == "MSD_musicnn"
    assert set(key["enum"]) == {"MSD_musicnn", "MTT_musicnn", "none"}
    assert {"logreg", "svm"} <= {m for m, inputs in config["classic"]["models"].items() if "musicnn" in inputs}


@pytest.mark.workflow
def test_an_unknown_embedding_model_stops_before_any_job_naming_the_key(tmp_path):
    result = run_snakemake(tmp_path, "-n", config=["features={'embedding': {'model': 'vggish'}}"], check=False)
    assert result.returncode != 0
    assert "vggish" in result.stdout and "embedding" in result.stdout
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_none_skips_the_musicnn_jobs(tmp_path):
    none = overlay(tmp_path, {"features": {"embedding": {"model": "none"}}}, "none.yaml")
    with_musicnn, without = planned_jobs(tmp_path), planned_jobs(tmp_path, configfiles=(TINY, none))
    tiny = yaml.safe_load(TINY.read_text())
    musicnn_jobs = sum(i.startswith("musicnn") for section in ("classic", "neural")
                       for inputs in tiny[section]["models"].values() for i in inputs)
    assert musicnn_jobs >= 2
    trained = ("train_classic", "train_neural")
    assert sum(with_musicnn[r] for r in trained) - sum(without[r] for r in trained) == musicnn_jobs
    assert with_musicnn["extract_features"] == without["extract_features"]


@pytest.mark.workflow
def test_changing_the_embedding_model_reruns_every_extraction_job(tiny_run, tmp_path):
    mtt = overlay(tmp_path, {"features": {"embedding": {"model": "MTT_musicnn"}}}, "mtt.yaml")
    jobs = planned_jobs(tiny_run, configfiles=(TINY, mtt))
    assert jobs["extract_features"] == len(list((tiny_run / "results/features/shards").rglob("*.h5")))


def test_the_envs_that_extract_install_the_weights_at_the_pin():
    """Extraction (audio env) and prediction (predict env) compute embeddings: both conda
    envs install requirements.txt's musicnn pin without dependencies after creation."""
    (line,) = [line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("musicnn==")]
    pin = line.split("#", 1)[0].strip()
    for env in ("audio", "predict"):
        assert f"pip install --no-deps {pin}\n" in (ROOT / "envs" / f"{env}.post-deploy.sh").read_text()
