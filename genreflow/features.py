"""Per-track frame-level features from one STFT, and the shard files that hold them.

The study called each librosa feature function on the waveform, each recomputing its
STFT (~230 ms a track). :func:`extract_features` computes the STFT once; its values equal
those calls (:func:`extract_features_reference`) to 1e-4 of each feature's scale
(``tests/test_features.py``, real GTZAN tracks). Where plain numpy replaces a librosa
function it is measurably faster (``benchmarks/extract.py``), and the helper says why it
gives the same numbers.

:func:`extract_shard_file` writes one shard (``docs/contracts.md``), quarantining bad
tracks one by one; with ``embedding`` set, musicnn's per-window embeddings too.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import multiprocessing
import os
import time
from pathlib import Path

import h5py
import librosa
import numpy as np
import scipy.fft
import scipy.signal
import threadpoolctl

from . import __version__
from .audio import AudioError, load_audio
from .constants import EMBEDDING_GROUP, HOP_LENGTH, N_FFT, N_MELS, N_MFCC, NO_EMBEDDING, SR
from .files import atomic_path

logger = logging.getLogger(__name__)

# The study's (librosa's default) analysis parameters; SR, N_FFT, HOP_LENGTH and band
# counts live in genreflow.constants.
TOP_DB = 80.0
ROLL_PERCENT = 0.85
# librosa.estimate_tuning -> piptrack defaults (chroma_stft's tuning estimate).
PIPTRACK_FMIN = 150.0
PIPTRACK_FMAX = 4000.0
PIPTRACK_THRESHOLD = 0.1
# librosa.feature.tempo's default autocorrelation window, in seconds.
TEMPO_AC_SIZE = 8.0
# Peak amplitude below this (-90 dBFS, about one 16-bit step) counts as silence.
SILENCE_PEAK = 10 ** (-90 / 20)

#: Frame-level features in the per-track file, each (n, T) or (T,), frames last.
FRAME_FEATURES = (
    "mfcc",
    "mel_db",
    "chroma",
    "rms",
    "spectral_centroid",
    "spectral_bandwidth",
    "rolloff",
    "zero_crossing_rate",
)

# Frames per block where a step works through the frames in cache-sized pieces.
_CHUNK = 64
_TINY32 = np.finfo(np.float32).tiny  # librosa.util.normalize's threshold for float32
_TINY64 = np.finfo(np.float64).tiny


class TrackRejected(ValueError):
    """A track that ``features.strict: true`` refuses to quarantine."""


def n_frames(n_samples, hop_length=HOP_LENGTH):
    """Number of centred STFT frames for ``n_samples`` samples (1293 for 30 s)."""
    return 1 + int(n_samples) // hop_length


# --------------------------------------------------------------------------------------
# Per-track results and shard files
# --------------------------------------------------------------------------------------


def extract_track(audio_path, track, label, min_duration=5.0, strict=False, embedding=None, threads=None):
    """Decode one track and extract its features, quarantining bad input.

    A file that cannot be decoded (missing, empty, not audio, truncated), is shorter
    than ``min_duration``, is silent or gives non-finite features gets
    ``status='rejected'`` and a ``reason`` (or, with ``strict``, raises
    :class:`TrackRejected` naming the file). Stereo and other rates are down-mixed and
    resampled.

    Parameters
    ----------
    audio_path : path-like
    track, label : str
        Track id (``<label>/<stem>``) and genre label, stored as attributes.
    min_duration : float
        Shortest accepted track, in seconds.
    strict : bool
    embedding : {"MSD_musicnn", "MTT_musicnn"}, optional
        Also compute this musicnn model's per-window embeddings (None or ``"none"``:
        not); a track shorter than one 3-s window gets zero rows.
    threads : int, optional
        TensorFlow's thread pools, if this call starts it.

    Returns
    -------
    attrs : dict
        The track's attributes of ``docs/contracts.md``.
    features : dict or None
        :func:`extract_features`' arrays (and ``features["musicnn"]`` with
        ``embedding``), or None for a rejected track.
    """
    started = time.perf_counter()
    attrs = {
        "track": str(track),
        "label": str(label),
        "source": os.fspath(audio_path),
        "sr": SR,
        "n_samples": 0,
        "tempo": float("nan"),
        "status": "ok",
        "reason": "",
        "genreflow_version": __version__,
        "embedding": embedding or NO_EMBEDDING,
    }
    features = None
    try:
        y, sr = load_audio(audio_path, sr=SR)
        attrs["n_samples"] = int(y.size)
        features = _checked_features(y, sr, min_duration)
        if embedding and embedding != NO_EMBEDDING:
            features[EMBEDDING_GROUP] = _checked_embedding(y, sr, embedding, threads)
    except (AudioError, _BadTrack) as exc:
        reason = exc.reason
        if strict:
            raise TrackRejected(
                f"track {track} ({os.fspath(audio_path)}) is unusable: {reason}. Fix: "
                "remove the file from the dataset, or set features.strict: false in "
                "the config to quarantine it and go on."
            ) from exc
        attrs.update(status="rejected", reason=reason)
        features = None
    else:
        attrs["tempo"] = features["tempo"]
    elapsed_ms = 1e3 * (time.perf_counter() - started)
    if features is None:
        logger.warning(
            "rejected %s (%s): %s [%.0f ms]", track, attrs["source"], attrs["reason"], elapsed_ms
        )
    else:
        musicnn = features.get(EMBEDDING_GROUP)
        logger.info(
            "extracted %s: %.1f s, %d frames, tempo %.1f bpm%s [%.0f ms]",
            track,
            attrs["n_samples"] / SR,
            features["rms"].size,
            attrs["tempo"],
            "" if musicnn is None else f", {len(musicnn['penultimate'])} musicnn windows",
            elapsed_ms,
        )
    return attrs, features


def write_track(group, attrs, features):
    """Write one track's attrs, and its features when accepted, into an HDF5 group
    (musicnn's arrays in the subgroup :data:`EMBEDDING_GROUP`)."""
    group.attrs.update(attrs)
    for name in FRAME_FEATURES if features is not None else ():
        group.create_dataset(name, data=np.asarray(features[name], dtype=np.float32))
    if features is not None and EMBEDDING_GROUP in features:
        embedded = group.create_group(EMBEDDING_GROUP)
        for name, rows in features[EMBEDDING_GROUP].items():
            embedded.create_dataset(name, data=np.asarray(rows, dtype=np.float32))


def extract_shard_file(tracks, out_path, min_duration=5.0, strict=False, progress_every=1, embedding=None,
                       threads=1):
    """Extract the tracks of one shard into one HDF5 file (``docs/contracts.md``).

    One group per track id (:func:`write_track`); a bad track is quarantined alone. The
    file appears, renamed from a temporary name, only when every track is in, so a
    killed job leaves none and the next run redoes the shard; temporaries of a killed
    earlier attempt are removed first.

    Parameters
    ----------
    tracks : sequence of (track, label, audio_path)
        Written in this order.
    out_path : path-like
    min_duration, strict, embedding
        As :func:`extract_track` (``strict``: raise at the first bad track, writing
        nothing).
    progress_every : int
        Log a progress line every this many tracks and after the last.
    threads : int
        Processes extracting at once. More than one: this process warms librosa up,
        then forks the workers, so the job pays the start-up once.

    Returns
    -------
    dict
        ``{"ok": n_accepted, "rejected": n_rejected, "seconds": wall time}``.
    """
    out_path = Path(out_path)
    _remove_stale_temporaries(out_path)
    started = time.perf_counter()
    tracks = [(str(t), str(lab), os.fspath(p)) for t, lab, p in tracks]
    workers = max(1, min(int(threads or 1), len(tracks)))
    extract = functools.partial(
        _extract_entry, min_duration=min_duration, strict=strict, embedding=embedding,
        threads=1 if workers > 1 else threads,
    )
    counts = {"ok": 0, "rejected": 0}
    with _extracted(extract, tracks, workers) as results, atomic_path(out_path) as tmp_path:
        with h5py.File(tmp_path, "w") as f:
            f.attrs.update(
                tracks=[t for t, _, _ in tracks],
                shard=out_path.stem,
                genreflow_version=__version__,
            )
            for done, ((track, _, _), (attrs, features)) in enumerate(zip(tracks, results), start=1):
                write_track(f.create_group(track), attrs, features)
                counts[attrs["status"] if attrs["status"] == "rejected" else "ok"] += 1
                if done % progress_every == 0 or done == len(tracks):
                    logger.info(
                        "shard %s: %d/%d tracks (%d accepted, %d rejected) in %.1f s",
                        out_path, done, len(tracks), counts["ok"], counts["rejected"],
                        time.perf_counter() - started,
                    )
    counts["seconds"] = time.perf_counter() - started
    return counts


def _extract_entry(entry, **kwargs):
    track, label, audio = entry
    return extract_track(audio, track, label, **kwargs)


@contextlib.contextmanager
def _extracted(extract, tracks, workers):
    """``extract`` of each track, in order: here, or in ``workers`` forked processes."""
    # BLAS on one thread, here and in the workers (forked, they inherit the limit): the
    # job's threads are the workers, and OpenBLAS threads on top made each worker several
    # times slower; one thread also gives the same features bit for bit whatever the threads.
    with threadpoolctl.threadpool_limits(1):
        if workers == 1:
            yield map(extract, tracks)
            return
        # Forked after the warm-up, the workers start with librosa's lazy imports and
        # compiled functions in place; a worker that dies breaks the pool loudly.
        extract_features(np.sin(np.arange(SR, dtype=np.float32) * 0.05))
        pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
        try:
            yield pool.map(extract, tracks)
        finally:
            pool.shutdown(cancel_futures=True)  # after a bad track (strict): stop at once


def _remove_stale_temporaries(out_path):
    # Snakemake never runs two jobs for one output at once: any temporary is stale.
    for stale in out_path.parent.glob(f".{out_path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
        logger.info("removed %s, left by a killed earlier attempt", stale)


class _BadTrack(Exception):
    """A decoded track that cannot be used; ``reason`` says why."""

    def __init__(self, reason):
        self.reason = reason
        super().__init__(reason)


def _checked_embedding(y, sr, model, threads=None):
    """musicnn's per-window arrays of ``y``, or _BadTrack when any is non-finite."""
    from . import embeddings

    _start_musicnn(model, threads)
    embedded = embeddings.embed(y, sr, model)
    for name, rows in embedded.items():
        if not np.all(np.isfinite(rows)):
            raise _BadTrack(f"non-finite values (NaN or inf) in the {model} embedding {name!r}")
    return embedded


@functools.cache
def _start_musicnn(model, threads=None):
    """Start TensorFlow (bounded to ``threads``) and load ``model``, once per process."""
    started = time.perf_counter()
    from . import embeddings
    from .devices import bound_tensorflow_threads

    bound_tensorflow_threads(threads)
    embeddings.load_musicnn(model)
    logger.info("loaded %s (TensorFlow and weights) in %.1f s", model, time.perf_counter() - started)


def _checked_features(y, sr, min_duration):
    """Features of ``y``, or _BadTrack for short, non-finite or silent audio."""
    duration = y.size / sr
    if duration < min_duration:
        raise _BadTrack(
            f"too short: {duration:.2f} s of audio, less than features.min_duration "
            f"({min_duration:g} s)"
        )
    if not np.all(np.isfinite(y)):
        raise _BadTrack("non-finite samples (NaN or inf) in the decoded audio")
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        what = "all samples are zero" if peak == 0 else f"peak amplitude {peak:.1e}"
        raise _BadTrack(f"silent: {what} (no signal above -90 dBFS)")
    features = extract_features(y, sr)
    for name, value in features.items():
        if not np.all(np.isfinite(value)):
            raise _BadTrack(f"non-finite values (NaN or inf) in the feature {name!r}")
    return features


# --------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------


def extract_features(y, sr=SR):
    """Frame-level features and tempo of one waveform, from a single STFT.

    Parameters
    ----------
    y : numpy.ndarray, shape (n_samples,)
        Mono waveform (float32, as :func:`genreflow.audio.load_audio` returns).
    sr : int
        Its sampling rate.

    Returns
    -------
    dict
        ``mfcc`` (20, T), ``mel_db`` (128, T) (dB relative to the track's maximum,
        floor -80), ``chroma`` (12, T), ``rms``, ``spectral_centroid``,
        ``spectral_bandwidth``, ``rolloff``, ``zero_crossing_rate`` (T,), all float32,
        T = 1 + n_samples // 512; and ``tempo`` (float, bpm).
    """
    y = _as_waveform(y)
    # One STFT with librosa's defaults (hann, center=True, constant padding). Big
    # arrays are dropped as soon as they are used: fewer pages live at once is
    # measurably faster (they are reused instead of faulted in again).
    stft = librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)
    magnitude = np.abs(stft)  # what spectral_* use (power=1)
    del stft
    power = magnitude**2  # what melspectrogram/chroma_stft use, bit for bit as librosa
    # power_to_db with ref=1.0 is what mfcc() and onset_strength() apply to the mel.
    mel_db_ref1 = librosa.power_to_db(_melspectrogram(power, sr), top_db=TOP_DB)
    chroma = _chroma(power, sr)
    del power
    centroid, bandwidth = _centroid_bandwidth(magnitude, sr)
    features = {
        "mfcc": scipy.fft.dct(mel_db_ref1, axis=0, type=2, norm="ortho")[:N_MFCC],
        # ref=np.max is the ref=1.0 dB shifted by its maximum; the clip keeps -80 exact.
        "mel_db": np.maximum(mel_db_ref1 - mel_db_ref1.max(), -TOP_DB),
        "chroma": chroma,
        "rms": _frame_rms(y),
        "spectral_centroid": centroid,
        "spectral_bandwidth": bandwidth,
        "rolloff": _rolloff(magnitude, sr),
        "zero_crossing_rate": _zero_crossing_rate(y),
    }
    features = {name: np.asarray(v, dtype=np.float32) for name, v in features.items()}
    features["tempo"] = _tempo(mel_db_ref1, sr)
    return features


def extract_features_reference(y, sr=SR):
    """The same features the study's way, one librosa call each (tempo from
    ``librosa.beat.beat_track``): the slow yardstick of the tests and benchmarks, with
    literal arguments so that it does not depend on this module's constants."""
    y = _as_waveform(y)
    mel = librosa.feature.melspectrogram(y=y, sr=sr)
    tempo, _ = librosa.beat.beat_track(y=y, sr=sr)
    features = {
        "mfcc": librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20),
        "mel_db": librosa.power_to_db(mel, ref=np.max),
        "chroma": librosa.feature.chroma_stft(y=y, sr=sr),
        "rms": librosa.feature.rms(y=y)[0],
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=sr)[0],
        "spectral_bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr)[0],
        "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr)[0],
        "zero_crossing_rate": librosa.feature.zero_crossing_rate(y)[0],
    }
    features = {name: np.asarray(v, dtype=np.float32) for name, v in features.items()}
    features["tempo"] = float(np.atleast_1d(tempo)[0])
    return features


def _as_waveform(y):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"expected a mono waveform (1-D), got shape {y.shape}")
    return y.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=8)
def _mel_bands(sr, group=8):
    """librosa's mel filter bank in groups of ``group`` filters, each with only the
    bins it covers (~90% of the dense 128 x 1025 matrix is zeros)."""
    basis = librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS)
    bands = []
    for start in range(0, N_MELS, group):
        block = basis[start : start + group]
        covered = np.flatnonzero(block.any(axis=0))
        lo, hi = (int(covered[0]), int(covered[-1]) + 1) if covered.size else (0, 0)
        bands.append((start, start + len(block), lo, hi, np.ascontiguousarray(block[:, lo:hi])))
    return tuple(bands)


def _melspectrogram(power, sr):
    """``librosa.feature.melspectrogram`` of a power spectrogram: librosa's weights and
    sums minus the exactly-zero terms (~1 ms instead of ~5)."""
    mel = np.zeros((N_MELS, power.shape[1]), dtype=np.float32)
    for first, last, lo, hi, block in _mel_bands(sr):
        if hi > lo:
            np.matmul(block, power[lo:hi], out=mel[first:last])
    return mel


@functools.lru_cache(maxsize=8)
def _fft_frequencies(sr):
    return librosa.fft_frequencies(sr=sr, n_fft=N_FFT)


@functools.lru_cache(maxsize=8)
def _moment_weights(sr):
    freqs = _fft_frequencies(sr)
    return np.stack([np.ones_like(freqs), freqs, freqs**2])


def _centroid_bandwidth(magnitude, sr):
    """Spectral centroid and bandwidth (p=2) from the first three spectral moments.

    librosa's ``sum(f * S)`` and ``sqrt(sum(S * (f - centroid)**2))`` over unit-sum
    frames equal centroid = m1/m0, bandwidth**2 = m2/m0 - centroid**2: one (3 x bins)
    product (~1 ms instead of ~34). float64, or the difference loses tonal frames'
    bandwidth; frames with no energy stay 0, as librosa leaves them.
    """
    weights = _moment_weights(sr)
    moments = np.empty((3, magnitude.shape[1]))
    for start in range(0, magnitude.shape[1], _CHUNK):  # small float64 copies stay in cache
        frames = slice(start, start + _CHUNK)
        moments[:, frames] = weights @ magnitude[:, frames].astype(np.float64)
    m0, m1, m2 = moments
    silent = m0 < _TINY32
    m0 = np.where(silent, 1.0, m0)
    centroid = np.where(silent, 0.0, m1 / m0)
    variance = np.where(silent, 0.0, m2 / m0 - centroid**2)
    return centroid, np.sqrt(np.maximum(variance, 0.0))


def _rolloff(magnitude, sr):
    """Roll-off frequency: the first bin where the cumulative magnitude reaches 85%.

    ``librosa.feature.spectral_rolloff``'s float32 running sum and threshold, so the
    same bin; summed row by row over all frames at once, with a count in place of its
    NaN-masked min (~4 ms instead of ~11).
    """
    cumulative = np.array(magnitude, dtype=np.float32, order="C")
    for k in range(1, cumulative.shape[0]):
        np.add(cumulative[k - 1], cumulative[k], out=cumulative[k])
    threshold = ROLL_PERCENT * cumulative[-1]
    # The cumulative sum never decreases: bins below the threshold come first.
    first = np.sum(cumulative < threshold, axis=0, dtype=np.intp)
    return _fft_frequencies(sr)[first]


def _chroma(power, sr):
    """``librosa.feature.chroma_stft`` on a precomputed power spectrogram."""
    tuning = _estimate_tuning(power, sr)
    raw = _chroma_basis(sr, tuning) @ power
    peak = raw.max(axis=0)
    peak[peak < _TINY32] = 1.0  # librosa's normalise leaves all-zero frames as they are
    return raw / peak


@functools.lru_cache(maxsize=64)
def _chroma_basis(sr, tuning):
    return librosa.filters.chroma(sr=sr, n_fft=N_FFT, tuning=tuning, n_chroma=12)


def _estimate_tuning(power, sr):
    """``librosa.estimate_tuning(S=power, sr=sr)``, looking only at piptrack's band.

    piptrack interpolates every bin but keeps only peaks in 150 Hz - 4 kHz; here the
    same peaks, shifts and magnitudes, with the float32/float64 arithmetic of librosa's
    stencils, for those ~360 bins only (~2 ms instead of ~33).
    """
    freqs = _fft_frequencies(sr)
    band = np.flatnonzero((PIPTRACK_FMIN <= freqs) & (freqs < min(PIPTRACK_FMAX, sr / 2)))
    lo, hi = int(band[0]), int(band[-1]) + 1
    # The peak threshold is relative to each frame's maximum over all bins.
    ref = PIPTRACK_THRESHOLD * power.max(axis=0)
    S = power[lo - 1 : hi + 1]  # the band plus one neighbour bin on each side
    gated = S * (S > ref)
    # librosa.util.localmax along frequency: strictly above the bin below, >= above.
    is_peak = (gated[1:-1] > gated[:-2]) & (gated[1:-1] >= gated[2:])
    rows, cols = np.nonzero(is_peak)
    rows = rows + 1  # index into S
    below, centre, above = S[rows - 1, cols], S[rows, cols], S[rows + 1, cols]
    # librosa's _pi_stencil: float32 sums, promoted to float64 by the integer 2.
    a = (above + below).astype(np.float64) - 2 * centre.astype(np.float64)
    b = (above - below).astype(np.float64) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(np.abs(b) >= np.abs(a), 0.0, -b / a).astype(np.float32)
    slope = (above - below) / 2.0  # np.gradient, float32
    mags = centre + 0.5 * slope * shift
    pitches = ((rows + (lo - 1) + shift.astype(np.float64)) * float(sr) / N_FFT).astype(np.float32)
    if pitches.size == 0:
        return librosa.pitch_tuning(pitches, resolution=0.01, bins_per_octave=12)
    threshold = np.median(mags)
    return librosa.pitch_tuning(pitches[mags >= threshold], resolution=0.01, bins_per_octave=12)


def _frame_rms(y):
    """``librosa.feature.rms(y=y)`` from sums of squares over 512-sample blocks.

    librosa's 2048-sample windows of the 1024-zero-padded signal are 4 consecutive
    hop-sized blocks each, so each block of ``y`` is summed once (float64), not 4 times.
    """
    full = y.size // HOP_LENGTH
    blocks = np.zeros(n_frames(y.size) + 3)  # padded blocks: 2 of zeros, y's, zeros
    whole = y[: full * HOP_LENGTH].reshape(full, HOP_LENGTH)
    blocks[2 : 2 + full] = np.einsum("ij,ij->i", whole, whole, dtype=np.float64)
    tail = y[full * HOP_LENGTH :].astype(np.float64)
    blocks[2 + full] = tail @ tail
    window_sums = blocks[:-3] + blocks[1:-2] + blocks[2:-1] + blocks[3:]
    return np.sqrt(window_sums / N_FFT)


def _zero_crossing_rate(y, threshold=1e-10):
    """``librosa.feature.zero_crossing_rate(y)`` by finding the sign changes once.

    librosa counts sign-bit changes (after zeroing |y| <= 1e-10) inside each 2048-sample
    frame of the edge-padded signal, over 2048; edge padding adds no change, so counting
    ``y``'s changes in each frame's span gives the same integers (<1 ms instead of ~10).
    """
    negative = y < -threshold  # the sign bit after zeroing tiny values
    changes = np.flatnonzero(negative[1:] != negative[:-1])  # pair (i, i + 1)
    centres = np.arange(n_frames(y.size)) * HOP_LENGTH  # frame covers [c - 1024, c + 1024)
    first = np.searchsorted(changes, centres - N_FFT // 2)
    end = np.searchsorted(changes, centres + N_FFT // 2 - 1)  # i + 1 <= c + 1023
    return (end - first) / N_FFT


def _tempo(mel_db_ref1, sr):
    """``librosa.beat.beat_track(y=y, sr=sr)``'s tempo, from the mel dB we already have.

    beat_track's onset envelope comes from the same ref=1.0 dB mel as the MFCCs; its
    tempo is the peak of the frame-averaged tempogram under librosa's prior. The average
    is computed here (:func:`_mean_tempogram`, ~4 ms instead of ~13).
    """
    onset_env = librosa.onset.onset_strength(
        S=mel_db_ref1, sr=sr, hop_length=HOP_LENGTH, aggregate=np.median
    )
    if not onset_env.any():
        return 0.0  # what beat_track answers when there are no onsets
    win_length = int(librosa.time_to_frames(TEMPO_AC_SIZE, sr=sr, hop_length=HOP_LENGTH))
    tempogram = _mean_tempogram(onset_env, win_length)
    tempo = librosa.feature.tempo(tg=tempogram[:, None], sr=sr, hop_length=HOP_LENGTH)
    return float(tempo[0])


def _mean_tempogram(onset_env, win_length, chunk=_CHUNK):
    """Frame average of ``librosa.feature.tempogram(onset_envelope=..)``, shape (win,).

    Each frame's autocorrelation (inverse FFT of its power spectrum P_t) is divided by
    its peak, the lag-0 value E_t; the inverse FFT is linear, so the average is one
    inverse FFT of sum_t P_t / E_t: half the FFTs. ``chunk`` frames at a time (cache).
    """
    n = onset_env.shape[-1]
    padded = np.pad(onset_env, win_length // 2, mode="linear_ramp", end_values=[0, 0])
    frames = np.lib.stride_tricks.sliding_window_view(padded, win_length)[:n]
    window = scipy.signal.get_window("hann", win_length, fftbins=True)
    n_pad = scipy.fft.next_fast_len(2 * win_length - 1, real=True)  # librosa's padding
    weighted_power = np.zeros(n_pad // 2 + 1)
    for start in range(0, n, chunk):
        windowed = frames[start : start + chunk] * window
        energy = np.einsum("ij,ij->i", windowed, windowed)
        # librosa's normalise leaves all-zero frames as they are (they add nothing).
        weight = np.divide(1.0, energy, out=np.zeros_like(energy), where=energy >= _TINY64)
        spectrum = np.fft.rfft(windowed, n=n_pad, axis=-1)
        weighted_power += weight @ (spectrum.real**2 + spectrum.imag**2)
    return np.fft.irfft(weighted_power, n=n_pad)[:win_length] / n
