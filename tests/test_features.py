"""genreflow's one-STFT extractor equals the study's librosa calls, feature by feature.

What "equal" means here, per frame-level feature (each compared as a whole array)::

    np.testing.assert_allclose(ours, librosa_s, rtol=1e-4, atol=1e-4 * max|librosa_s|)

Every value is within 1e-4 relative of librosa's, or within 1e-4 of the feature's
scale on that track (its largest magnitude). The absolute part is needed because
some values sit at or near zero where a relative bound means nothing: MFCCs and
dB values cross zero, and silent frames are exactly 0. Tempo is a choice among
discrete autocorrelation lags, so it must be the same bpm (to rtol 1e-4).

The study's way is ``extract_features_reference``: one librosa call per feature on
the waveform (``mfcc(y=y, sr=sr, n_mfcc=20)``, ``power_to_db(melspectrogram(y=..),
ref=np.max)``, ``chroma_stft``, ``rms``, ``spectral_centroid``,
``spectral_bandwidth``, ``spectral_rolloff``, ``zero_crossing_rate``, and
``beat.beat_track``'s tempo).
"""

import librosa
import numpy as np
import pytest

from genreflow.audio import load_audio
from genreflow.constants import SR
from genreflow.features import (
    FRAME_FEATURES,
    HOP_LENGTH,
    N_FFT,
    _estimate_tuning,
    extract_features,
    extract_features_reference,
)

# Real tracks of four genres (quiet classical, dense metal, ...).
REAL_TRACKS = [
    "genres/blues/blues.00000.wav",
    "genres/classical/classical.00003.wav",
    "genres/hiphop/hiphop.00005.wav",
    "genres/metal/metal.00007.wav",
]
# librosa.load imports audioread, which imports modules Python 3.13 drops: not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:'(aifc|audioop|sunau)' is deprecated:DeprecationWarning"
)
SHAPES = {"mfcc": 20, "mel_db": 128, "chroma": 12}  # rows; the rest are (T,)


def assert_feature_equal(name, ours, reference, context):
    reference = np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape, f"{context}: {name} shape"
    np.testing.assert_allclose(
        ours,
        reference,
        rtol=1e-4,
        atol=1e-4 * np.max(np.abs(reference)),
        err_msg=f"{context}: {name} differs from librosa",
    )


@pytest.fixture(scope="module")
def real_tracks(gtzan_mini):
    """(name, path, y, ours, librosa's) for each real track, computed once."""
    out = []
    for rel in REAL_TRACKS:
        path = gtzan_mini / rel
        y, sr = load_audio(path)
        out.append(
            (path.name, path, y, extract_features(y, sr), extract_features_reference(y, sr))
        )
    return out


def synthetic_signals():
    """Signals that stress the edge cases: zero frames, a pure tone, impulses, noise."""
    t = np.arange(int(6.3 * SR)) / SR
    rng = np.random.default_rng(0)
    clicks = np.zeros(t.size)
    clicks[:: SR // 2] = 0.9  # 120 bpm
    return {
        # Half a 4 kHz tone, half digital silence: all-zero frames (librosa leaves
        # their normalised spectra at 0) and narrow high peaks (bandwidth precision).
        "tone_then_silence": np.where(t < 3, 0.5 * np.sin(2 * np.pi * 4000 * t), 0.0),
        # A steady high tone: bandwidth ~16 Hz around a 6 kHz centroid, where the
        # moments' difference m2/m0 - centroid**2 needs float64.
        "high_tone": 0.5 * np.sin(2 * np.pi * 6000 * t),
        "clicks": clicks,
        "noise_and_chord": 0.05 * rng.standard_normal(t.size)
        + sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)),
    }


@pytest.mark.parametrize("name", FRAME_FEATURES)
def test_feature_equals_librosa_on_real_tracks(real_tracks, name):
    for track, _, _, ours, reference in real_tracks:
        assert_feature_equal(name, ours[name], reference[name], track)


def test_tempo_equals_beat_track_on_real_tracks(real_tracks):
    for track, _, _, ours, reference in real_tracks:
        assert ours["tempo"] == pytest.approx(reference["tempo"], rel=1e-4), track
        assert 30 < ours["tempo"] < 320, track


def test_tuning_estimate_equals_librosa(real_tracks):
    """The band-limited piptrack gives chroma_stft's tuning exactly (it picks the filters)."""
    for track, _, y, _, _ in real_tracks:
        power = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)) ** 2
        assert _estimate_tuning(power, SR) == librosa.estimate_tuning(S=power, sr=SR), track


def test_load_audio_equals_librosa_load(real_tracks):
    for track, path, y, _, _ in real_tracks:
        expected, _ = librosa.load(path, sr=22050, mono=True)
        assert y.dtype == np.float32
        np.testing.assert_array_equal(y, expected, err_msg=track)


@pytest.mark.parametrize(
    "native_sr, channels, suffix",
    [(44100, 2, ".wav"), (48000, 1, ".flac"), (22050, 2, ".ogg"), (16000, 1, ".wav")],
)
def test_load_audio_resamples_and_downmixes_like_librosa(
    tmp_path, make_wav, native_sr, channels, suffix
):
    rng = np.random.default_rng(1)
    t = np.arange(2 * native_sr) / native_sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t)[:, None] + 0.05 * rng.standard_normal((t.size, channels))
    path = make_wav(tmp_path / f"track{suffix}", y, native_sr)
    ours, sr = load_audio(path)
    expected, _ = librosa.load(path, sr=22050, mono=True)
    assert sr == 22050 and ours.ndim == 1 and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize("signal", list(synthetic_signals()))
@pytest.mark.filterwarnings("ignore:Trying to estimate tuning from empty frequency set")
def test_features_equal_librosa_on_edge_signals(signal):
    y = synthetic_signals()[signal].astype(np.float32)
    ours, reference = extract_features(y, SR), extract_features_reference(y, SR)
    for name in FRAME_FEATURES:
        assert_feature_equal(name, ours[name], reference[name], signal)
    assert ours["tempo"] == pytest.approx(reference["tempo"], rel=1e-4)


@pytest.mark.parametrize("n_samples", [661794, 5 * SR + 1, 5 * SR + 511, 5 * SR + 512])
def test_layout_follows_the_contract(n_samples):
    """Frames last, T = 1 + n_samples // 512, float32, mel dB within [-80, 0]."""
    y = (0.1 * np.random.default_rng(2).standard_normal(n_samples)).astype(np.float32)
    features = extract_features(y, SR)
    n_frames = 1 + n_samples // 512
    assert set(features) == set(FRAME_FEATURES) | {"tempo"}
    for name in FRAME_FEATURES:
        expected = (SHAPES[name], n_frames) if name in SHAPES else (n_frames,)
        assert features[name].shape == expected, name
        assert features[name].dtype == np.float32, name
    assert isinstance(features["tempo"], float)
    assert features["mel_db"].max() == 0.0
    assert features["mel_db"].min() >= -80.0


def test_refuses_multichannel_arrays():
    with pytest.raises(ValueError, match="mono"):
        extract_features(np.zeros((2, SR), dtype=np.float32), SR)
