"""The merged dataset from shard files: HDF5 layout, Kaggle-like table, rejected list, readers."""

import h5py
import numpy as np
import pandas as pd
import pytest

from genreflow import dataset
from synthetic_tracks import write_shard_file


SPECS = [("blues/blues.00000", 1293), ("jazz/jazz.00001", 1400), ("rock/rock.00002", 600)]
BAD = ("pop/pop.00003", 1293, 3, "rejected", "silent: no signal energy")


@pytest.fixture
def merged(tmp_path):
    """Shard files (one per label, as the workflow writes them), given out of order."""
    features = {}
    files = []
    for seed, (track, n_frames) in reversed(list(enumerate(SPECS))):
        path = tmp_path / "shards" / track.split("/")[0] / "0-of-1.h5"
        features.update(write_shard_file(path, [(track, n_frames, seed, "ok", "")]))
        files.append(path)
    files.insert(1, tmp_path / "shards" / "pop" / "0-of-1.h5")
    write_shard_file(files[1], [BAD])
    out = tmp_path / "dataset.h5", tmp_path / "features.csv", tmp_path / "rejected.csv"
    n = dataset.merge_shards(files, *out)
    return n, out, features


def read_all(path):
    with h5py.File(path) as f:
        attrs = {name: {k: np.asarray(v).tolist() for k, v in f[name].attrs.items()} for name in f}
        attrs["/"] = {k: np.asarray(v).tolist() for k, v in f.attrs.items()}
        return {name: f[name][()] for name in f}, attrs


def test_merge_does_not_depend_on_how_tracks_are_sharded(tmp_path, merged):
    """One shard per track, or all in one shard in another order, or two shards of two
    tracks given out of order: the same dataset.h5 (rows in sorted track order) and the
    same tables."""
    _, (h5_path, csv_path, rejected_path), _ = merged
    specs = [(track, n_frames, seed, "ok", "") for seed, (track, n_frames) in enumerate(SPECS)]
    one_shard = tmp_path / "one" / "0-of-1.h5"
    write_shard_file(one_shard, [specs[2], BAD, specs[0], specs[1]])
    outs = tmp_path / "one" / "d.h5", tmp_path / "one" / "f.csv", tmp_path / "one" / "r.csv"
    assert dataset.merge_shards([one_shard], *outs) == 3
    two_shards = tmp_path / "two" / "1-of-2.h5", tmp_path / "two" / "0-of-2.h5"
    write_shard_file(two_shards[0], [specs[1], BAD])
    write_shard_file(two_shards[1], [specs[2], specs[0]])
    two_outs = tmp_path / "two" / "d.h5", tmp_path / "two" / "f.csv", tmp_path / "two" / "r.csv"
    assert dataset.merge_shards(two_shards, *two_outs) == 3
    expected, expected_attrs = read_all(h5_path)
    for other in (outs, two_outs):
        arrays, attrs = read_all(other[0])
        assert arrays.keys() == expected.keys() and attrs == expected_attrs
        for name in expected:
            np.testing.assert_array_equal(arrays[name], expected[name], err_msg=name)
        assert other[1].read_text() == csv_path.read_text()
        assert other[2].read_text() == rejected_path.read_text()


@pytest.mark.parametrize("block", [1, 2])
def test_merge_blocks_write_the_same_rows(tmp_path, merged, monkeypatch, block):
    """Rows written in blocks of 1 or 2 (3 tracks: a full and a partial block) equal the
    default block's (larger than the dataset: one partial block)."""
    _, (h5_path, csv_path, _), _ = merged
    monkeypatch.setattr(dataset, "MERGE_BLOCK", block)
    specs = [(track, n_frames, seed, "ok", "") for seed, (track, n_frames) in enumerate(SPECS)]
    shard = tmp_path / "blocks" / "0-of-1.h5"
    write_shard_file(shard, [specs[2], BAD, specs[0], specs[1]])
    outs = tmp_path / "blocks" / "d.h5", tmp_path / "blocks" / "f.csv", tmp_path / "blocks" / "r.csv"
    assert dataset.merge_shards([shard], *outs) == 3
    expected, _ = read_all(h5_path)
    arrays, _ = read_all(outs[0])
    for name in expected:
        np.testing.assert_array_equal(arrays[name], expected[name], err_msg=name)
    assert outs[1].read_text() == csv_path.read_text()


def test_merge_writes_the_contract_layout(merged):
    n, (h5_path, _, _), features = merged
    assert n == 3
    with h5py.File(h5_path) as f:
        assert f["track"].asstr()[()].tolist() == ["blues/blues.00000", "jazz/jazz.00001", "rock/rock.00002"]
        assert f["label"].asstr()[()].tolist() == ["blues", "jazz", "rock"]
        assert list(f.attrs["genres"]) == ["blues", "jazz", "rock"]
        assert f["mfcc"].shape == (3, 1293, 20)
        assert f["mel"].shape == (3, 128, 1293)
        assert f["frames"].shape == (3, 1293, 37)
        assert f["n_frames"][()].tolist() == [1293, 1293, 600]
        assert list(f["stats"].attrs["columns"]) == dataset.STATS_COLUMNS
        np.testing.assert_allclose(f["mfcc"][1], features["jazz/jazz.00001"]["mfcc"].T[:1293])
        # shorter tracks are zero-padded, mel is rescaled to 0..1
        assert not f["mfcc"][2, 600:].any()
        mel = f["mel"][0]
        assert 0.0 <= mel.min() and mel.max() <= 1.0
        np.testing.assert_allclose(mel, (features["blues/blues.00000"]["mel_db"] + 80) / 80, rtol=1e-6)


def test_stats_table_matches_numpy_and_kaggle_names(merged):
    _, (_, csv_path, _), features = merged
    table = pd.read_csv(csv_path)
    assert table.columns[:4].tolist() == ["filename", "length", "chroma_stft_mean", "chroma_stft_var"]
    assert table.columns[-2:].tolist() == ["label", "track"]
    assert {"rolloff_mean", "zero_crossing_rate_var", "tempo", "mfcc20_var", "chroma12_mean"} <= set(table.columns)
    row = table.set_index("track").loc["jazz/jazz.00001"]
    f = features["jazz/jazz.00001"]
    # whole-track statistics, not of the cut 1293-frame matrix
    assert row["mfcc3_mean"] == pytest.approx(f["mfcc"][2].astype(np.float64).mean(), rel=1e-5)
    assert row["spectral_centroid_var"] == pytest.approx(f["spectral_centroid"].astype(np.float64).var(), rel=1e-5)
    assert row["chroma_stft_mean"] == pytest.approx(f["chroma"].astype(np.float64).mean(), rel=1e-5)
    assert row["chroma5_var"] == pytest.approx(f["chroma"][4].astype(np.float64).var(), rel=1e-5)
    assert row["length"] == 1399 * 512 and row["filename"] == "jazz.00001.wav"


def test_rejected_tracks_are_listed_with_reason(merged):
    _, (_, csv_path, rejected_path), _ = merged
    rejected = pd.read_csv(rejected_path)
    assert rejected.to_dict("records") == [
        {"track": "pop/pop.00003", "source": "/audio/pop/pop.00003.wav", "reason": "silent: no signal energy"}
    ]
    assert "pop/pop.00003" not in pd.read_csv(csv_path)["track"].tolist()


def test_all_rejected_fails_with_pointer_to_rejected_csv(tmp_path):
    bad = tmp_path / "pop" / "0-of-1.h5"
    write_shard_file(bad, [("pop/a", 1293, 0, "rejected", "empty file")])
    with pytest.raises(ValueError, match="all 1 tracks were rejected"):
        dataset.merge_shards([bad], tmp_path / "d.h5", tmp_path / "f.csv", tmp_path / "r.csv")
    assert not (tmp_path / "d.h5").exists()


def test_reader_reads_rows_in_requested_order_and_windows(merged):
    _, (h5_path, _, _), features = merged
    data = dataset.FeatureDataset(h5_path)
    rows = data.rows(["rock/rock.00002", "blues/blues.00000"])
    assert rows.tolist() == [2, 0]
    mfcc = data.read("mfcc", rows)
    np.testing.assert_allclose(mfcc[1], features["blues/blues.00000"]["mfcc"].T)
    with pytest.raises(KeyError, match="rerun the split"):
        data.rows(["nope/nope"])
    rows, starts, names, width = data.windows(["blues/blues.00000", "rock/rock.00002"], 3.0, 3.0)
    assert width == 129
    # 1293 frames -> 10 full windows; 600 frames -> 4
    assert (names == "blues/blues.00000").sum() == 10 and (names == "rock/rock.00002").sum() == 4
    assert starts[:3].tolist() == [0, 129, 258]


def test_segment_stats_equal_stats_of_the_window(merged):
    _, (h5_path, _, _), features = merged
    data = dataset.FeatureDataset(h5_path)
    X, y, names = data.segment_stats(["rock/rock.00002"], 3.0, 1.5, "mfcc_stats")
    assert X.shape == (1 + (600 - 129) // 65, 40) and set(y) == {"rock"}
    start = 2 * dataset.seconds_to_frames(1.5)  # third window, 65-frame hop
    window = features["rock/rock.00002"]["mfcc"][:, start : start + 129].astype(np.float64)
    assert X[2, 0] == pytest.approx(window[0].mean(), rel=1e-5)
    assert X[2, 1] == pytest.approx(window[0].var(), rel=1e-5)


def test_input_columns():
    columns = ["filename", "length", *dataset.STATS_COLUMNS[1:], "label", "track"]
    assert len(dataset.input_columns(columns, "mfcc_stats")) == 40
    all_stats = dataset.input_columns(columns, "all_stats_seg")
    assert "length" not in all_stats and "tempo" in all_stats and len(all_stats) == len(dataset.STATS_COLUMNS) - 1
    with pytest.raises(KeyError, match="unknown table input"):
        dataset.input_columns(columns, "mel")


def test_kaggle_table_gets_track_ids(tmp_path):
    path = tmp_path / "features_30_sec.csv"
    pd.DataFrame({"filename": ["blues.00000.wav", "rock.00001.wav"], "length": [661794] * 2,
                  "mfcc1_mean": [1.0, 2.0], "mfcc1_var": [3.0, 4.0], "label": ["blues", "rock"]}).to_csv(path, index=False)
    X, y, columns = dataset.load_table(path, "mfcc_stats", ["rock/rock.00001"])
    assert X.tolist() == [[2.0, 4.0]] and y.tolist() == ["rock"] and columns == ["mfcc1_mean", "mfcc1_var"]
    (tmp_path / "bad.csv").write_text("name,genre\nx,y\n")
    with pytest.raises(ValueError, match="'filename', 'label'"):
        dataset.read_table(tmp_path / "bad.csv")
