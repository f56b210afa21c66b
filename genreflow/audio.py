"""Decode audio files into the study's waveform: float32, mono, 22050 Hz.

The values equal ``librosa.load(path, sr=22050, mono=True)`` (the study's loader): libsndfile
reads wav/au/flac/ogg/mp3, channels are averaged and other rates resampled with ``soxr_hq``;
what libsndfile cannot open goes through librosa's audioread fallback.
"""

from __future__ import annotations

import os
import re
import warnings

import librosa
import numpy as np
import soundfile as sf

from genreflow.constants import SR

# libsndfile logs "data : <declared> (should be <actual>)" when a WAV's data chunk
# claims more bytes than the file holds: a cut download or an interrupted copy.
_DATA_SIZE_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streaming writers leave a placeholder size (0 or 0xFFFFFFFF) there; not a truncation.
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF, 0x7FFFFFFF)
_SAMPLE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


class AudioError(Exception):
    """An audio file (``path``) that cannot give a waveform, and why (``reason``, in words)."""

    def __init__(self, path, reason):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def load_audio(path, sr=SR):
    """Decode an audio file into a mono float32 waveform at ``sr`` Hz.

    Returns
    -------
    y : numpy.ndarray, shape (n_samples,), float32
        Equal to ``librosa.load(path, sr=sr, mono=True)[0]``.
    sr : int

    Raises
    ------
    AudioError
        The file is missing, empty (0 bytes), not audio, truncated, or holds no samples.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise AudioError(path, "file not found")
    if os.path.getsize(path) == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        y, native_sr = _read_soundfile(path)
    except sf.SoundFileRuntimeError as exc:
        # libsndfile does not know the format (e.g. m4a): librosa's audioread route.
        y, native_sr = _read_audioread(path, exc)
    if y.size == 0:
        raise AudioError(path, "no audio samples in the file")
    if native_sr != sr:
        y = librosa.resample(y, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq")
    return np.ascontiguousarray(y, dtype=np.float32), sr


def _read_soundfile(path):
    """Read as ``librosa.load`` does, down-mixed; refuse a WAV whose header declares more audio than it holds."""
    with sf.SoundFile(path) as f:
        match = _DATA_SIZE_MISMATCH.search(f.extra_info)
        declared, actual = (int(g) for g in match.groups()) if match else (0, 0)  # 0: a placeholder
        if declared not in _PLACEHOLDER_SIZES and declared > actual:
            width = _SAMPLE_BYTES.get(f.subtype)
            if width:
                per_second = width * f.channels * f.samplerate
                sizes = f"{declared / per_second:.1f} s of audio but it holds {actual / per_second:.1f} s"
            else:
                sizes = f"{declared} bytes of audio but it holds {actual}"
            reason = f"truncated file: its header declares {sizes} (an incomplete copy or download; "
            raise AudioError(path, reason + "replace or remove it)")
        data = f.read(dtype="float32", always_2d=True)  # (frames, channels)
        native_sr = f.samplerate
    # Channels first, as librosa.load hands them to librosa.to_mono (their mean).
    return (data[:, 0] if data.shape[1] == 1 else librosa.to_mono(data.T)), native_sr


def _read_audioread(path, soundfile_error):
    try:
        with warnings.catch_warnings():
            # librosa warns that it falls back to (deprecated) audioread: expected here.
            warnings.simplefilter("ignore", (UserWarning, FutureWarning))
            return librosa.load(path, sr=None, mono=True)
    except Exception as exc:  # audioread raises several unrelated types
        says = getattr(soundfile_error, "error_string", str(soundfile_error))
        reason = f"cannot decode as audio (libsndfile: {says}; audioread: {type(exc).__name__} {exc}".rstrip()
        raise AudioError(path, reason + "); not an audio file, or a damaged one") from exc
