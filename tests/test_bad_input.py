"""A track in a shard file: contract layout, quarantine of bad input, strict mode, atomic writes."""

import logging
import subprocess
import sys
import textwrap

import h5py
import librosa
import numpy as np
import pytest
import threadpoolctl

import genreflow
from genreflow.audio import AudioError, load_audio
from genreflow.constants import SR
from genreflow.features import (
    FRAME_FEATURES,
    TrackRejected,
    extract_features,
    extract_shard_file,
)

# librosa.load imports audioread, which imports modules Python 3.13 drops: not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:'(aifc|audioop|sunau)' is deprecated:DeprecationWarning"
)
CONTRACT_ATTRS = {
    "track",
    "label",
    "source",
    "sr",
    "n_samples",
    "tempo",
    "status",
    "reason",
    "genreflow_version",
    "embedding",
}
TRACK = "blues/blues.00042"


def music_like(seconds, sr=SR, channels=1, seed=0):
    """Tones, a beat and a little noise: a signal every feature has something to say about."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    beat = (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.standard_normal(t.size) * 0.3
    tones = sum(0.15 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    y = tones + beat + 0.01 * rng.standard_normal(t.size)
    return np.stack([y * (1 - 0.3 * c) for c in range(channels)], axis=1)


def read(path, track=TRACK):
    """The attributes and datasets of ``track``'s group in a shard file."""
    with h5py.File(path, "r") as f:
        group = f[track]
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in group.attrs.items()}
        data = {name: group[name][()] for name in group}
    return attrs, data


def extract(audio, out, **kwargs):
    """Extract ``audio`` as TRACK into the shard file ``out``; the track's attributes."""
    counts = extract_shard_file([(TRACK, "blues", audio)], out, **kwargs)
    attrs, _ = read(out)
    assert counts[attrs["status"] if attrs["status"] == "rejected" else "ok"] == 1
    assert counts["ok"] + counts["rejected"] == 1
    return attrs


# ---------------------------------------------------------------- accepted input


def test_good_track_file_follows_the_contract(tmp_path, make_wav, caplog):
    audio = make_wav(tmp_path / "in" / "blues.00042.wav", music_like(6.0))
    out = tmp_path / "shards" / "0-of-1.h5"
    with caplog.at_level(logging.INFO, logger="genreflow"):
        returned = extract_shard_file([(TRACK, "blues", audio)], out)

    with h5py.File(out, "r") as f:  # the shard holds the one track, as a group at its id
        assert f.attrs["tracks"].tolist() == [TRACK] and list(f) == ["blues"] and list(f["blues"]) == ["blues.00042"]
    attrs, data = read(out)
    assert set(attrs) == CONTRACT_ATTRS
    assert attrs["status"] == "ok" and attrs["reason"] == ""
    assert (attrs["track"], attrs["label"], attrs["source"]) == (TRACK, "blues", str(audio))
    assert attrs["sr"] == 22050 and attrs["genreflow_version"] == genreflow.__version__
    y, _ = load_audio(audio)
    assert attrs["n_samples"] == y.size
    with threadpoolctl.threadpool_limits(1):  # as a shard job computes them, bit for bit
        expected = extract_features(y, SR)
    assert attrs["tempo"] == expected["tempo"]
    assert (returned["ok"], returned["rejected"]) == (1, 0)
    assert set(data) == set(FRAME_FEATURES)
    n_frames = 1 + y.size // 512
    for name in FRAME_FEATURES:
        assert data[name].dtype == np.float32
        assert data[name].shape[-1] == n_frames
        np.testing.assert_array_equal(data[name], expected[name])
    # A progress line names the track and its timing; no temp file is left behind.
    assert any(TRACK in r.getMessage() and " ms]" in r.getMessage() for r in caplog.records)
    assert [p.name for p in out.parent.iterdir()] == [out.name]


@pytest.mark.parametrize("native_sr, channels", [(44100, 2), (44100, 1), (22050, 2)])
def test_stereo_and_other_rates_are_accepted(tmp_path, make_wav, native_sr, channels):
    audio = make_wav(tmp_path / "x.wav", music_like(6.0, native_sr, channels), native_sr)
    out = tmp_path / "x.h5"
    attrs = extract(audio, out)
    assert attrs["status"] == "ok", attrs["reason"]
    expected, _ = librosa.load(audio, sr=22050, mono=True)
    saved_attrs, data = read(out)
    assert saved_attrs["n_samples"] == expected.size
    with threadpoolctl.threadpool_limits(1):  # as a shard job computes them, bit for bit
        np.testing.assert_array_equal(data["mfcc"], extract_features(expected, SR)["mfcc"])


# ---------------------------------------------------------------- rejected input


def zero_bytes(folder, make_wav):
    path = folder / "empty.wav"
    path.write_bytes(b"")
    return path


def text_named_wav(folder, make_wav):
    path = folder / "notes.wav"
    path.write_text("these are liner notes, not audio\n" * 20)
    return path


def truncated_in_header(folder, make_wav):
    whole = make_wav(folder / "whole.wav", music_like(6.0)).read_bytes()
    path = folder / "cut_header.wav"
    path.write_bytes(whole[:20])
    return path


def truncated_in_data(folder, make_wav):
    # Half the samples are gone but the header still declares all of them.
    whole = make_wav(folder / "whole.wav", music_like(12.0)).read_bytes()
    path = folder / "cut_data.wav"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def header_only(folder, make_wav):
    return make_wav(folder / "no_samples.wav", np.zeros(0))


def silence(folder, make_wav):
    return make_wav(folder / "silence.wav", np.zeros(6 * SR))


def one_second(folder, make_wav):
    return make_wav(folder / "short.wav", music_like(1.0))


def nan_samples(folder, make_wav):
    y = music_like(6.0)
    y[1000:1010] = np.nan
    return make_wav(folder / "nan.wav", y, subtype="FLOAT")


def missing(folder, make_wav):
    return folder / "not_there.wav"


BAD_INPUT = {
    zero_bytes: "empty file (0 bytes)",
    text_named_wav: "cannot decode as audio",
    truncated_in_header: "cannot decode as audio",
    truncated_in_data: "truncated file",
    header_only: "no audio samples",
    silence: "silent",
    one_second: "too short: 1.00 s",
    nan_samples: "non-finite samples",
    missing: "file not found",
}


@pytest.mark.parametrize(
    "make_bad, reason", BAD_INPUT.items(), ids=lambda x: getattr(x, "__name__", "")
)
def test_bad_input_is_quarantined(tmp_path, make_wav, caplog, make_bad, reason):
    audio = make_bad(tmp_path, make_wav)
    out = tmp_path / "shards" / "0-of-1.h5"
    with caplog.at_level(logging.WARNING, logger="genreflow"):
        returned = extract_shard_file([(TRACK, "blues", audio)], out)
    attrs, data = read(out)
    assert set(attrs) == CONTRACT_ATTRS
    assert attrs["status"] == "rejected" and (returned["ok"], returned["rejected"]) == (0, 1)
    assert reason in attrs["reason"]
    assert attrs["source"] == str(audio) and attrs["track"] == TRACK
    assert np.isnan(attrs["tempo"])
    assert data == {}  # no feature datasets
    assert any(TRACK in r.getMessage() and reason in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "make_bad, reason", BAD_INPUT.items(), ids=lambda x: getattr(x, "__name__", "")
)
def test_strict_mode_names_the_file_the_reason_and_the_fix(tmp_path, make_wav, make_bad, reason):
    audio = make_bad(tmp_path, make_wav)
    out = tmp_path / "shards" / "0-of-1.h5"
    with pytest.raises(TrackRejected) as error:
        extract_shard_file([(TRACK, "blues", audio)], out, strict=True)
    message = str(error.value)
    assert str(audio) in message and reason in message
    assert "features.strict: false" in message and "remove the file" in message
    assert not out.exists() and not list(out.parent.glob(".*.tmp"))  # nor a temporary file


def test_load_audio_errors_name_the_file(tmp_path, make_wav):
    audio = text_named_wav(tmp_path, make_wav)
    with pytest.raises(AudioError) as error:
        load_audio(audio)
    assert error.value.path == str(audio) and str(audio) in str(error.value)


def test_min_duration_is_a_parameter(tmp_path, make_wav):
    audio = make_wav(tmp_path / "x.wav", music_like(6.0))
    assert extract(audio, tmp_path / "a.h5", min_duration=5.0)["status"] == "ok"
    rejected = extract(audio, tmp_path / "b.h5", min_duration=10.0)
    assert rejected["status"] == "rejected" and "min_duration (10 s)" in rejected["reason"]


def test_non_finite_features_are_quarantined(tmp_path, make_wav, monkeypatch):
    import genreflow.features as features_module

    def with_a_nan(y, sr):
        features = extract_features(y, sr)
        features["spectral_centroid"][3] = np.nan
        return features

    monkeypatch.setattr(features_module, "extract_features", with_a_nan)
    audio = make_wav(tmp_path / "x.wav", music_like(6.0))
    attrs = extract(audio, tmp_path / "x.h5")
    assert attrs["status"] == "rejected"
    assert "non-finite" in attrs["reason"] and "spectral_centroid" in attrs["reason"]


# ---------------------------------------------------------------- atomic writes


def test_a_crash_mid_write_leaves_no_file(tmp_path, make_wav, monkeypatch):
    """An error after some datasets are written: no output, no temp file, old file intact."""
    audio = make_wav(tmp_path / "x.wav", music_like(6.0))
    out = tmp_path / "tracks" / "x.h5"
    out.parent.mkdir()
    written = []
    original = h5py.Group.create_dataset

    def crash_on_third(self, name, *args, **kwargs):
        if len(written) == 2:
            raise OSError("disk full (simulated)")
        written.append(name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", crash_on_third)
    with pytest.raises(OSError, match="simulated"):
        extract_shard_file([(TRACK, "blues", audio)], out)
    assert len(written) == 2  # it did crash half-way
    assert list(out.parent.iterdir()) == []

    # Over an existing file: the old one stays whole until the new one is complete.
    out.write_bytes(b"previous complete file")
    written.clear()
    with pytest.raises(OSError, match="simulated"):
        extract_shard_file([(TRACK, "blues", audio)], out)
    assert out.read_bytes() == b"previous complete file"
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_a_killed_job_leaves_no_output_file(tmp_path, make_wav):
    """SIGKILL half-way through writing (no cleanup runs): the output path never exists."""
    audio = make_wav(tmp_path / "x.wav", music_like(6.0))
    out = tmp_path / "tracks" / "x.h5"
    child = textwrap.dedent(f"""
        import os, signal, h5py
        from genreflow.features import extract_shard_file
        original = h5py.Group.create_dataset
        def killed_on_third(self, name, *args, _n=[0], **kwargs):
            _n[0] += 1
            if _n[0] == 3:
                self.file.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, name, *args, **kwargs)
        h5py.Group.create_dataset = killed_on_third
        extract_shard_file([("blues/x", "blues", {str(audio)!r})], {str(out)!r})
        """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    assert not out.exists()
    leftovers = list(out.parent.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".x.h5.")  # hidden temp file
