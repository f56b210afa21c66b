"""Track-level splits: stratification, determinism, k-fold, list files."""

from pathlib import Path

import pandas as pd
import pytest

from genreflow import splits

ROOT = Path(__file__).resolve().parents[1]
FAULT_FILTERED = ROOT.parent / "shared" / "data" / "splits" / "gtzan-fault-filtered"


def gtzan_like(n_per_genre=20, genres=("blues", "jazz", "metal", "pop")):
    tracks = [f"{g}/{g}.{i:05d}" for g in genres for i in range(n_per_genre)]
    return tracks, [t.split("/")[0] for t in tracks]


def test_stratified_split_is_75_25_per_genre_and_seeded():
    tracks, labels = gtzan_like()
    split = splits.stratified_split(tracks, labels, seed=3)
    counts = pd.crosstab(split["label"], split["part"])
    assert (counts["test"] == 5).all() and (counts["train"] == 15).all()
    again = splits.stratified_split(tracks, labels, seed=3)
    pd.testing.assert_frame_equal(split, again)
    other = splits.stratified_split(tracks, labels, seed=4)
    assert not split["part"].equals(other["part"])


def test_stratified_split_can_carve_a_valid_part():
    tracks, labels = gtzan_like()
    split = splits.stratified_split(tracks, labels, valid_size=0.2, seed=0)
    counts = pd.crosstab(split["label"], split["part"])
    assert (counts["valid"] == 3).all() and (counts["train"] == 12).all()


def test_kfold_gives_each_track_one_test_fold():
    tracks, labels = gtzan_like(10)
    split = splits.kfold_split(tracks, labels, n_folds=5, seed=0)
    folds = list(splits.iter_folds(split))
    assert len(folds) == 5
    tested = [t for _, _, _, test in folds for t in test]
    assert sorted(tested) == sorted(tracks)
    for _, train, valid, test in folds:
        assert not set(train) & set(test) and valid == []
        assert pd.Series([t.split("/")[0] for t in test]).value_counts().eq(2).all()


def test_iter_folds_of_holdout_split():
    tracks, labels = gtzan_like()
    split = splits.stratified_split(tracks, labels, valid_size=0.2)
    [(fold, train, valid, test)] = list(splits.iter_folds(split))
    assert fold == 0
    assert len(train) + len(valid) + len(test) == len(tracks)
    assert not (set(train) | set(valid)) & set(test)


def test_too_few_tracks_per_label_names_the_label():
    with pytest.raises(ValueError, match=r"jazz \(1\)"):
        splits.stratified_split(["a/1", "a/2", "jazz/1"], ["a", "a", "jazz"])


def test_lists_map_au_to_any_format_and_report_mismatches(tmp_path):
    (tmp_path / "train.txt").write_text("blues/blues.00000.au\nblues/blues.00001.au\nrock/rock.00009.au\n")
    (tmp_path / "test.txt").write_text("blues/blues.00002.wav\n")
    tracks = ["blues/blues.00000", "blues/blues.00001", "blues/blues.00002", "jazz/jazz.00000"]
    split, report = splits.lists_split(
        tracks, [t.split("/")[0] for t in tracks], {"train": tmp_path / "train.txt", "test": tmp_path / "test.txt"}
    )
    assert split.set_index("track")["part"].to_dict() == {
        "blues/blues.00000": "train",
        "blues/blues.00001": "train",
        "blues/blues.00002": "test",
    }
    assert report == {"missing_from_data": ["rock/rock.00009"], "not_in_lists": ["jazz/jazz.00000"]}


def test_track_in_two_lists_is_refused(tmp_path):
    (tmp_path / "train.txt").write_text("pop/pop.00000.wav\n")
    (tmp_path / "test.txt").write_text("pop/pop.00000.wav\n")
    with pytest.raises(ValueError, match="one list only"):
        splits.lists_split(["pop/pop.00000"], ["pop"], {"train": tmp_path / "train.txt", "test": tmp_path / "test.txt"})


def test_fault_filtered_lists_on_gtzan_mini_names():
    if not FAULT_FILTERED.is_dir():
        pytest.skip(f"{FAULT_FILTERED} is absent (the artist-filtered GTZAN split lists)")
    files = {p: FAULT_FILTERED / f"{p}_filtered.txt" for p in ("train", "valid", "test")}
    listed = {p: splits.read_list_file(f) for p, f in files.items()}
    assert {p: len(v) for p, v in listed.items()} == {"train": 443, "valid": 197, "test": 290}
    # gtzan-mini's ids 00000-00009: the filtered split puts some of them in lists
    tracks = [f"{g}/{g}.{i:05d}" for g in ("blues", "jazz", "rock") for i in range(10)]
    split, report = splits.lists_split(tracks, [t.split("/")[0] for t in tracks], files)
    assert set(split["track"]) | set(report["not_in_lists"]) == set(tracks)
    assert len(report["missing_from_data"]) == 930 - len(split)


def test_make_split_dispatches_and_rejects_unknown_method():
    tracks, labels = gtzan_like(10)
    split, unmatched = splits.make_split(tracks, labels, {"method": "kfold", "n_folds": 2})
    assert set(split["part"]) == {"cv"} and unmatched.empty
    with pytest.raises(ValueError, match="split.method 'random'"):
        splits.make_split(tracks, labels, {"method": "random"})
