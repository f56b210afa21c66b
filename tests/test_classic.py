"""Classic models: every model x input trains and writes its outputs, segment mode,
the staged grid search against GridSearchCV, clear errors, table sources, and the
Snakemake wiring (one job per model x input, params rerun trigger)."""

import json

import h5py
import joblib
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from genreflow.constants import N_FRAMES
from genreflow.dataset import FRAME_COLUMNS, STATS_COLUMNS, FeatureDataset, read_table
from genreflow.models.classic import (
    FAST_GRIDS,
    LOGREG_CS,
    MODELS,
    PAPER_GRIDS,
    StagedGridSearchCV,
    make_cv,
    make_pipeline,
    resolve_grid,
    search_model,
)
from genreflow.examples import make_source
from genreflow.jobs import ClassicFamily, run_model_job
from genreflow.splits import kfold_split, stratified_split
from workflow import TINY, overlay, planned_jobs, run_snakemake

GENRES = ["blues", "classical", "jazz", "metal"]


def run_classic_job(model, input_name, grid, split_csv, outdir, table_path=None, dataset_path=None,
                    cv_folds=5, seed=0, segments=None, threads=1):
    """One classic job as scripts/train_classic.py runs it."""
    source = make_source(input_name, dataset_path, table_path, segments)
    family = ClassicFamily(model, grid, cv_folds, seed, threads)
    return run_model_job(family, source, split_csv, outdir, {"model": model, "input": input_name})


def stats_table(tracks_per_genre=10, seed=0, kaggle=False):
    """A features.csv-like table whose genres differ in their MFCC and other stats."""
    rng = np.random.default_rng(seed)
    rows = []
    for g, genre in enumerate(GENRES):
        for i in range(tracks_per_genre):
            values = rng.normal(size=len(STATS_COLUMNS)) + 2.5 * np.sin(np.arange(len(STATS_COLUMNS)) + 1.7 * g)
            rows.append([f"{genre}.{i:05d}.wav", *values, genre, f"{genre}/{genre}.{i:05d}"])
    table = pd.DataFrame(rows, columns=["filename", *STATS_COLUMNS, "label", "track"])
    table["length"] = 661794
    if kaggle:  # Kaggle's layout: no track column, and columns genreflow does not compute
        table = table.drop(columns="track")
        table.insert(3, "harmony_mean", rng.normal(size=len(table)))
        table.insert(4, "perceptr_var", rng.normal(size=len(table)))
    return table


def write_split(path, table, method="stratified"):
    if method == "kfold":
        split = kfold_split(table["track"], table["label"], n_folds=3, seed=0)
    else:
        split = stratified_split(table["track"], table["label"], test_size=0.25, seed=0)
    split.to_csv(path, index=False)
    return split


#: Small grids: these tests check the plumbing, not the presets' quality.
TEST_GRIDS = {
    "knn": {"n_neighbors": [3, 5]},
    "logreg": {"C": [0.1, 1.0]},
    "rf": {"n_estimators": [10, 20], "max_depth": [None]},
    "adaboost": {"n_estimators": [2, 3], "estimator__n_estimators": [10]},
    "gboost": {"n_estimators": [10, 20], "max_depth": [2]},
    "svm": {"C": [1.0, 10.0]},
    "histgb": {"max_iter": [10, 20], "min_samples_leaf": [3]},
}


@pytest.fixture
def table_files(tmp_path):
    table = stats_table()
    table.to_csv(tmp_path / "features.csv", index=False)
    split = write_split(tmp_path / "split.csv", table)
    return tmp_path / "features.csv", tmp_path / "split.csv", split


# ----------------------------------------------------------------------------- grids


def test_paper_grids_are_the_studys():
    assert PAPER_GRIDS["knn"]["n_neighbors"] == list(range(4, 31))
    assert set(PAPER_GRIDS["knn"]["weights"]) == {"uniform", "distance"}
    assert PAPER_GRIDS["rf"]["max_depth"] == list(range(1, 21))
    assert PAPER_GRIDS["rf"]["n_estimators"] == [100, 200, 300, 400, 500]
    assert set(PAPER_GRIDS["rf"]["criterion"]) == {"gini", "entropy"}
    for model in ("adaboost", "gboost"):
        rates = PAPER_GRIDS[model]["learning_rate"]
        assert len(rates) == 20 and rates[0] == 0.1 and rates[-1] == 2.0
        assert np.allclose(np.diff(rates), 0.1)
        assert PAPER_GRIDS[model]["n_estimators"] == list(range(50, 301, 10))
    assert set(PAPER_GRIDS["logreg"]["solver"]) == {"saga", "lbfgs"}
    assert np.allclose(LOGREG_CS, np.logspace(-4, 4, 10))  # LogisticRegressionCV's Cs=10
    assert set(PAPER_GRIDS) == set(FAST_GRIDS) == set(MODELS)


def test_resolve_grid_presets_overrides_and_errors():
    assert resolve_grid("knn", "paper") == PAPER_GRIDS["knn"]
    assert resolve_grid("knn", "fast") == FAST_GRIDS["knn"]
    # an override replaces the preset; a scalar is one value
    assert resolve_grid("knn", "paper", {"n_neighbors": 7}) == {"n_neighbors": [7]}
    assert resolve_grid("adaboost", "fast", {"estimator__max_depth": [3, None]}) == {
        "estimator__max_depth": [3, None]
    }
    with pytest.raises(ValueError, match=r"classic.grids.rf: 'n_neighbours' is not a parameter"):
        resolve_grid("rf", "fast", {"n_neighbours": [3]})
    with pytest.raises(ValueError, match="classic.grid is 'huge'"):
        resolve_grid("rf", "huge")
    with pytest.raises(ValueError, match="unknown classic model 'xgb'"):
        resolve_grid("xgb", "fast")


# ----------------------------------------------------------------------------- jobs


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("input_name", ["mfcc_stats", "all_stats"])
def test_every_model_and_input_writes_its_outputs(tmp_path, table_files, model, input_name):
    table_csv, split_csv, split = table_files
    outdir = tmp_path / "models" / model / input_name
    metrics = run_classic_job(
        model, input_name, TEST_GRIDS[model], split_csv, outdir,
        table_path=table_csv, cv_folds=3, seed=0, threads=1,
    )
    for name in ("metrics.json", "predictions.csv", "confusion.csv", "confusion.png", "model.joblib"):
        assert (outdir / name).stat().st_size > 0, name
    written = json.loads((outdir / "metrics.json").read_text())
    assert written["model"] == model and written["input"] == input_name and written["mode"] == "track"
    test_tracks = split.loc[split["part"] == "test", "track"]
    assert written["n_test"] == len(test_tracks)
    assert written["n_train"] == int((split["part"] == "train").sum())
    assert set(written["best_params"]) == set(TEST_GRIDS[model])
    assert written["device"] == "CPU" and written["n_folds"] == 1 and written["fit_seconds"] > 0
    assert 0 < written["best_cv_score"] <= 1
    # genres are well separated: every model must beat chance (25%) clearly
    assert metrics["accuracy"] >= 0.7, metrics
    predictions = pd.read_csv(outdir / "predictions.csv")
    assert sorted(predictions["track"]) == sorted(test_tracks)
    assert list(predictions.columns[:4]) == ["track", "fold", "true", "predicted"]
    proba = predictions[[f"p_{g}" for g in GENRES]].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0)
    confusion = pd.read_csv(outdir / "confusion.csv", index_col=0)
    assert list(confusion.index) == GENRES and list(confusion.columns) == GENRES
    assert confusion.to_numpy().sum() == len(test_tracks)
    bundle = joblib.load(outdir / "model.joblib")
    assert len(bundle["pipelines"]) == 1 and bundle["classes"] == GENRES


def test_kfold_split_predicts_every_track_once(tmp_path):
    table = stats_table(tracks_per_genre=6)
    table.to_csv(tmp_path / "features.csv", index=False)
    write_split(tmp_path / "split.csv", table, method="kfold")
    metrics = run_classic_job(
        "knn", "mfcc_stats", {"n_neighbors": [3, 5]}, tmp_path / "split.csv", tmp_path / "out",
        table_path=tmp_path / "features.csv", cv_folds=3,
    )
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv")
    assert sorted(predictions["track"]) == sorted(table["track"])
    assert sorted(predictions["fold"].unique()) == [0, 1, 2]
    assert metrics["n_folds"] == 3 and len(metrics["best_params"]) == 3
    assert len(joblib.load(tmp_path / "out" / "model.joblib")["pipelines"]) == 3


def test_kaggle_like_table_source(tmp_path):
    """A precomputed table (no track column, extra columns) runs through the same code."""
    kaggle = stats_table(kaggle=True)
    kaggle.to_csv(tmp_path / "features_30_sec.csv", index=False)
    normalised = read_table(tmp_path / "features_30_sec.csv")  # what rule import_table writes
    write_split(tmp_path / "split.csv", normalised)
    metrics = run_classic_job(
        "logreg", "all_stats", {"C": [1.0]}, tmp_path / "split.csv", tmp_path / "out",
        table_path=tmp_path / "features_30_sec.csv", cv_folds=3,
    )
    assert metrics["accuracy"] >= 0.7
    pipeline = joblib.load(tmp_path / "out" / "model.joblib")["pipelines"][0]
    # all_stats = every numeric column but length: the Kaggle-only columns count too
    assert pipeline.n_features_in_ == len(STATS_COLUMNS) - 1 + 2


# ----------------------------------------------------------------------------- segments


def write_dataset(path, tracks_per_genre=8, seed=0, signal=1.0):
    """A minimal dataset.h5 (contract layout) whose frames carry a genre signal."""
    rng = np.random.default_rng(seed)
    tracks, labels = [], []
    frames = np.zeros((len(GENRES) * tracks_per_genre, N_FRAMES, len(FRAME_COLUMNS)), dtype=np.float32)
    for g, genre in enumerate(GENRES):
        for i in range(tracks_per_genre):
            k = len(tracks)
            tracks.append(f"{genre}/{genre}.{i:05d}")
            labels.append(genre)
            centre = signal * np.sin(np.arange(len(FRAME_COLUMNS)) + 1.7 * g)
            frames[k] = centre + rng.normal(scale=1.0 + 0.3 * np.cos(np.arange(len(FRAME_COLUMNS)) + g), size=frames.shape[1:])
    n_frames = np.full(len(tracks), N_FRAMES, dtype=np.int32)
    n_frames[0] = 700  # a shorter track: fewer windows
    with h5py.File(path, "w") as f:
        f.attrs["genres"] = GENRES
        f.create_dataset("track", data=np.array(tracks, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("label", data=np.array(labels, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("tempo", data=rng.uniform(80, 160, len(tracks)).astype(np.float32))
        f.create_dataset("n_frames", data=n_frames)
        f.create_dataset("frames", data=frames)
    return pd.DataFrame({"track": tracks, "label": labels})


def test_segment_mode_trains_on_windows_and_votes_per_track(tmp_path):
    tracks = write_dataset(tmp_path / "dataset.h5")
    split = stratified_split(tracks["track"], tracks["label"], test_size=0.25, seed=0)
    split.to_csv(tmp_path / "split.csv", index=False)
    segments = {"length": 3.0, "hop": 3.0}
    metrics = run_classic_job(
        "logreg", "all_stats_seg", {"C": [0.1, 1.0]}, tmp_path / "split.csv", tmp_path / "out",
        dataset_path=tmp_path / "dataset.h5", cv_folds=3, segments=segments,
    )
    dataset = FeatureDataset(tmp_path / "dataset.h5")
    train = split.loc[split["part"] == "train", "track"].tolist()
    test = split.loc[split["part"] == "test", "track"].tolist()
    n_windows = len(dataset.windows(train, 3.0, 3.0)[0])
    assert metrics["mode"] == "segments" and metrics["n_train_windows"] == n_windows
    assert n_windows > 5 * len(train)  # ~10 windows of 3 s per 30 s track
    assert 0 < metrics["window_accuracy"] <= 1 and metrics["accuracy"] >= 0.7
    predictions = pd.read_csv(tmp_path / "out" / "predictions.csv").set_index("track")
    assert sorted(predictions.index) == sorted(test)
    # a track's probabilities are the mean of its windows' probabilities
    pipeline = joblib.load(tmp_path / "out" / "model.joblib")["pipelines"][0]
    X, _, owners = dataset.segment_stats(test, 3.0, 3.0, "all_stats")
    proba = pipeline.predict_proba(X)
    for track in test[:3]:
        expected = proba[owners == track].mean(axis=0)
        assert np.allclose(predictions.loc[track, [f"p_{c}" for c in pipeline.classes_]], expected)
        assert predictions.loc[track, "predicted"] == pipeline.classes_[expected.argmax()]


@pytest.mark.parametrize("per_track", [1, 10])  # tracks, or 10 windows a track (groups)
def test_more_cv_folds_than_tracks_of_any_genre_names_the_setting(per_track):
    rng = np.random.default_rng(0)
    track_labels = np.array(GENRES * 4)  # 4 tracks a genre
    y = np.repeat(track_labels, per_track)
    X = rng.normal(size=(len(y), 3))
    groups = np.repeat(np.arange(len(track_labels)), per_track) if per_track > 1 else None
    with pytest.raises(ValueError, match=r"classic.cv_folds is 5, .*at most 4.*set classic.cv_folds to 4 or less"):
        search_model("knn", {"n_neighbors": [1]}, X, y, groups=groups, cv_folds=5)
    _, search = search_model("knn", {"n_neighbors": [1]}, X, y, groups=groups, cv_folds=4)
    assert len(search.cv_results_["mean_test_score"]) == 1


def test_segment_cv_keeps_each_tracks_windows_in_one_fold():
    """Windows of one track are near copies; genres are random per track. A CV that
    split tracks would let 1-NN find a window's twin and score ~100%."""
    rng = np.random.default_rng(0)
    n_tracks, per_track = 40, 6
    centres = rng.normal(size=(n_tracks, 5))
    X = np.repeat(centres, per_track, axis=0) + rng.normal(scale=1e-3, size=(n_tracks * per_track, 5))
    track_labels = np.array(GENRES * (n_tracks // len(GENRES)))
    y = np.repeat(track_labels, per_track)
    groups = np.repeat([f"t{i}" for i in range(n_tracks)], per_track)
    _, grouped = search_model("knn", {"n_neighbors": [1]}, X, y, groups=groups, cv_folds=4)
    _, leaky = search_model("knn", {"n_neighbors": [1]}, X, y, groups=None, cv_folds=4)
    assert leaky.best_score_ > 0.95  # the trap works
    assert grouped.best_score_ < 0.6
    for train, test in make_cv(4, 0, grouped=True).split(X, y, groups):
        assert not set(groups[train]) & set(groups[test])


# ----------------------------------------------------------------------------- staged search

SMALL_GRIDS = {
    # depths around the trees' grown depths: some trees are kept, some grown again
    "rf": {"n_estimators": [3, 6, 10], "max_depth": [1, 2, 3, 5, 8, None], "criterion": ["gini", "entropy"]},
    # small forests: boosting goes on past the first stage
    "adaboost": {"learning_rate": [0.1, 1.5], "n_estimators": [2, 5, 8], "estimator__n_estimators": [3]},
    # forests of fully grown trees on all samples fit the training part perfectly:
    # boosting stops after one stage
    "adaboost_perfect": {
        "learning_rate": [0.1, 0.5, 1.0],
        "n_estimators": [2, 4],
        "estimator__n_estimators": [5],
        "estimator__bootstrap": [False],
    },
    "gboost": {"learning_rate": [0.1, 1.5], "n_estimators": [3, 6, 10], "max_depth": [2]},
    "histgb": {"learning_rate": [0.1, 0.5], "max_iter": [3, 6, 12], "max_leaf_nodes": [7]},
    "svm": {"C": [0.5, 5.0], "gamma": ["scale", 0.05]},
}


def small_problem(n=96, seed=1):
    table = stats_table(tracks_per_genre=n // len(GENRES), seed=seed)
    rng = np.random.default_rng(seed)
    X = table[[c for c in STATS_COLUMNS if c.startswith("mfcc")][:12]].to_numpy()
    X = X + rng.normal(scale=2.0, size=X.shape)  # overlap, so settings differ in score
    return X, table["label"].to_numpy()


@pytest.mark.parametrize("name", list(SMALL_GRIDS))
@pytest.mark.parametrize("grouped", [False, True])
def test_optimised_search_equals_grid_search(name, grouped):
    model = name.split("_")[0]
    grid = SMALL_GRIDS[name]
    X, y = small_problem()
    groups = np.arange(len(y)) // 2 if grouped else None  # pairs of "windows" per track
    with threadpool_limits(limits=1):  # OpenMP (histgb) on tiny data: threads only cost
        fitted, search = search_model(model, grid, X, y, groups=groups, cv_folds=3, seed=0)
        plain = GridSearchCV(
            make_pipeline(model, seed=0),
            {f"model__{k}": v for k, v in grid.items()},
            cv=make_cv(3, 0, grouped=grouped),
            error_score="raise",
        ).fit(X, y, groups=groups)
    assert search.best_params_ == plain.best_params_
    assert search.best_score_ == plain.best_score_
    assert np.array_equal(search.cv_results_["mean_test_score"], plain.cv_results_["mean_test_score"])
    for i in range(3):
        assert np.array_equal(search.cv_results_[f"split{i}_test_score"], plain.cv_results_[f"split{i}_test_score"])
    assert np.array_equal(search.cv_results_["rank_test_score"], plain.cv_results_["rank_test_score"])
    # the refitted model is the one GridSearchCV refits (svm: then calibrated)
    if model == "svm":
        svc = fitted[-1].calibrated_classifiers_[0].estimator
        assert np.array_equal(svc.decision_function(fitted[0].transform(X)), plain.best_estimator_.decision_function(X))
    else:
        assert np.array_equal(fitted.predict_proba(X), plain.best_estimator_.predict_proba(X))
    if isinstance(search, StagedGridSearchCV):
        assert search.n_fits_ < search.n_plain_fits_
    if name == "adaboost_perfect":  # one fit per split serves every learning rate
        assert search.n_fits_ == 3
    if name == "rf":  # one forest per (depth, criterion, split), cut to every tree count
        assert search.n_fits_ == search.n_plain_fits_ / len(grid["n_estimators"])


# ----------------------------------------------------------------------------- errors


def test_no_training_data_or_one_genre_fails_clearly(tmp_path, table_files):
    table_csv, _, split = table_files
    empty = split.assign(part="test")
    empty.to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ValueError, match=r"rf on 'all_stats' \(fold 0\): no training tracks.*split"):
        run_classic_job("rf", "all_stats", {"n_estimators": [10]}, tmp_path / "empty.csv", tmp_path / "o1", table_path=table_csv)

    one_genre = split.copy()
    one_genre.loc[one_genre["label"] != "jazz", "part"] = "test"
    one_genre.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(ValueError, match=r"svm on 'mfcc_stats'.*all \d+ training tracks are 'jazz'.*at least two genres"):
        run_classic_job("svm", "mfcc_stats", {"C": [1.0]}, tmp_path / "one.csv", tmp_path / "o2", table_path=table_csv)

    few = split.copy()
    few.loc[few.groupby("label").cumcount() > 0, "part"] = "test"  # one training track per genre
    few.to_csv(tmp_path / "few.csv", index=False)
    with pytest.raises(ValueError, match=r"4 training tracks with a full window cannot fill classic.cv_folds = 5"):
        run_classic_job("knn", "all_stats", {"n_neighbors": [1]}, tmp_path / "few.csv", tmp_path / "o3", table_path=table_csv)
    assert not (tmp_path / "o1" / "metrics.json").exists()


def test_segment_input_without_dataset_fails_clearly(tmp_path, table_files):
    table_csv, split_csv, _ = table_files
    with pytest.raises(ValueError, match=r"'all_stats_seg' needs frame-level features.*dataset.source: table"):
        run_classic_job("knn", "all_stats_seg", {"n_neighbors": [3]}, split_csv, tmp_path / "o", table_path=table_csv)


# ----------------------------------------------------------------------------- workflow


@pytest.mark.workflow
def test_workflow_runs_one_job_per_model_and_reruns_only_an_edited_grid(tmp_path):
    """Table source end to end: a requested output runs only what it needs; editing one
    model's grid reruns only that model's job (params trigger), never the import/split."""
    stats_table(tracks_per_genre=8, kaggle=True).to_csv(tmp_path / "table.csv", index=False)

    def overlay(name, knn_grid):
        settings = {
            "dataset": {"source": "table", "table": str(tmp_path / "table.csv")},
            "classic": {
                "cv_folds": 3,
                "threads": 1,
                "grids": {"knn": {"n_neighbors": knn_grid}, "logreg": {"C": [1.0]}},
            },
        }
        path = tmp_path / name
        path.write_text(yaml.safe_dump(settings))
        return path

    work = tmp_path / "work"
    work.mkdir()
    first = (overlay("first.yaml", [3, 5]),)
    knn = "results/models/knn/mfcc_stats/metrics.json"
    logreg = "results/models/logreg/all_stats/metrics.json"
    assert planned_jobs(work, knn, configfiles=first) == {"import_table": 1, "make_split": 1, "train_classic": 1}

    run_snakemake(work, "--cores", "2", knn, logreg, configfiles=first)
    for target in (knn, logreg):
        metrics = json.loads((work / target).read_text())
        assert metrics["n_test"] == 8 and metrics["accuracy"] >= 0.7
    assert (work / "results/logs/train_classic/knn/mfcc_stats.log").stat().st_size > 0
    assert (work / "results/benchmarks/train_classic/logreg/all_stats.tsv").exists()
    assert json.loads((work / knn).read_text())["grid"] == {"n_neighbors": [3, 5]}

    assert planned_jobs(work, knn, logreg, configfiles=first) == {}
    dry = run_snakemake(work, "-n", knn, logreg, configfiles=(overlay("edited.yaml", [3, 7]),)).stdout
    assert dry.count("wildcards: model=") == 1 and "wildcards: model=knn, input=mfcc_stats" in dry
    assert "import_table" not in dry and "make_split" not in dry


@pytest.mark.workflow
def test_a_network_named_like_a_classic_model_is_refused_at_parse_time(tmp_path):
    clash = overlay(tmp_path, {"neural": {"models": {"svm": ["all_stats"]},
                                          "architectures": {"svm": {"kind": "dense", "units": [8]}}}})
    result = run_snakemake(tmp_path, "-n", check=False, configfiles=(TINY, clash))
    assert result.returncode != 0
    assert "config neural.models.svm: 'svm' is a classic model's name" in result.stdout
    assert "rename the network" in result.stdout


def test_the_same_job_twice_gives_identical_metrics_and_predictions(tmp_path, table_files):
    table_csv, split_csv, _ = table_files
    runs = [
        run_classic_job("rf", "all_stats", TEST_GRIDS["rf"], split_csv, tmp_path / name, table_path=table_csv, cv_folds=3)
        for name in ("a", "b")
    ]
    for metrics in runs:
        metrics.pop("fit_seconds")
    assert runs[0] == runs[1]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "predictions.csv"), pd.read_csv(tmp_path / "b" / "predictions.csv"), check_exact=True
    )
