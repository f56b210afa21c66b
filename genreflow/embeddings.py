"""Pretrained music embeddings: musicnn (Pons & Serra, 2019) rebuilt in Keras 3.

The weights are the TensorFlow 1 checkpoints shipped in the PyPI package ``musicnn==0.1.0`` (installed
with ``--no-deps``: its metadata asks for numpy<1.17 and a full ``tensorflow``), imported only to find
them. Its graph code needs ``tf_keras`` and graph mode, and under numpy 2 its float16 preprocessing
overflows to inf; so the network is rebuilt layer for layer in Keras 3, loaded with TensorFlow's
checkpoint reader and fed float32 input. Nothing is downloaded. ``tests/test_embeddings.py`` checks the
rebuild against the original graph's outputs (``tests/data/musicnn_reference.npz``).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import librosa
import numpy as np

from .constants import (
    MUSICNN_HOP_LENGTH,
    MUSICNN_MODELS,
    MUSICNN_N_FFT,
    MUSICNN_N_FRAMES,
    MUSICNN_N_MELS,
    MUSICNN_SR,
)

#: What :func:`embed` returns per window, with each array's width.
OUTPUTS = {"penultimate": 200, "max_pool": 753, "mean_pool": 753, "taggram": 50}

#: How to install the weights when they are missing.
INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"

# widths of the layers (the package builds them as int(1.6 * 128), int(0.4 * 96), ...)
TIMBRAL_FILTERS = 204
TIMBRAL_WIDTHS = (38, 67)  # mel bands covered by the two timbral kernels
TIMBRAL_LENGTH = 7  # frames covered by the timbral kernels
TEMPORAL_FILTERS = 51
TEMPORAL_LENGTHS = (128, 64, 32)  # frames covered by the temporal kernels
MIDEND_FILTERS = 64
MIDEND_LENGTH = 7
BACKEND_UNITS = 200
N_TAGS = 50
BATCH_NORM_EPSILON = 1e-3  # TF1's


def windows(frames, length=MUSICNN_N_FRAMES):
    """Cut ``(n_frames, n_bands)`` into ``(n_frames // length, length, n_bands)`` windows, dropping the tail."""
    n = frames.shape[0] // length
    return np.ascontiguousarray(frames[: n * length].reshape(n, length, frames.shape[1]))


def musicnn_input(y, sr):
    """A mono waveform as the network's input: non-overlapping 3-s log-mel windows.

    ``y`` is resampled to 16 kHz (librosa's default ``soxr_hq``, as ``librosa.load(path, sr=16000)``
    does) when ``sr`` differs.

    Returns
    -------
    numpy.ndarray, shape (n_windows, 187, 96), float32
        ``log10(10000 * mel + 1)`` of the power mel spectrogram, computed in float32. A 30-s track
        gives 10 windows; one shorter than 187 frames (about 2.98 s) gives none.
    """
    y = np.asarray(y, dtype=np.float32)
    if sr != MUSICNN_SR:
        y = librosa.resample(y, orig_sr=sr, target_sr=MUSICNN_SR)
    mel = librosa.feature.melspectrogram(
        y=y, sr=MUSICNN_SR, n_fft=MUSICNN_N_FFT, hop_length=MUSICNN_HOP_LENGTH, n_mels=MUSICNN_N_MELS
    ).astype(np.float32)
    return windows(np.log10(np.float32(10000) * mel + np.float32(1)).T)


def n_windows(n_samples, sr):
    """How many windows :func:`musicnn_input` makes of ``n_samples`` at ``sr``.

    Exact at 16 kHz; at other rates it assumes librosa's resampled length ``ceil(n_samples * 16000 / sr)``.
    """
    n16 = int(np.ceil(n_samples * MUSICNN_SR / sr))
    return (1 + n16 // MUSICNN_HOP_LENGTH) // MUSICNN_N_FRAMES


def checkpoint_prefix(model="MSD_musicnn"):
    """Path prefix of a musicnn checkpoint inside the installed ``musicnn`` package.

    The folder with a trailing separator: the files have an empty base name (``.index``).

    Raises
    ------
    ValueError
        For a model not in :data:`genreflow.constants.MUSICNN_MODELS`.
    FileNotFoundError
        When the package or the model's files are not installed.
    """
    if model not in MUSICNN_MODELS:
        raise ValueError(f"unknown musicnn model {model!r}; choose one of {', '.join(MUSICNN_MODELS)}")
    spec = importlib.util.find_spec("musicnn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the musicnn weights are not installed: {INSTALL_HINT}")
    folder = Path(spec.origin).parent / model
    if not (folder / ".index").is_file():
        raise FileNotFoundError(f"no {model} checkpoint in {folder}: {INSTALL_HINT}")
    return f"{folder}/"


def build_musicnn():
    """The musicnn network as an untrained Keras model.

    Returns
    -------
    model : keras.Model
        ``(batch, 187, 96)`` log-mel windows in, a dict of :data:`OUTPUTS` out.
    scopes : dict of str to keras.layers.Layer
        The layer taking each checkpoint scope's weights, named as TensorFlow 1 auto-named layers by
        creation order (``"conv2d_5"``: the first mid-end convolution).
    signs : dict of str to (keras.layers.Layer, str)
        Per front-end convolution scope, its per-channel ``sign`` layer and the scope of the batch norm
        whose scale's sign it takes (see ``front_block``).
    """
    import keras
    from keras import layers, ops

    scopes, signs = {}, {}
    counters = {"conv2d": 0, "batch_normalization": 0, "dense": 0}
    last = {}  # the latest scope of each kind

    def scoped(kind, layer):
        """Register ``layer`` under the next TF1 auto-name of ``kind``."""
        n = counters[kind]
        counters[kind] += 1
        last[kind] = kind if n == 0 else f"{kind}_{n}"
        scopes[last[kind]] = layer
        return layer

    def batch_norm(x):
        return scoped("batch_normalization", layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON))(x)

    def front_block(x, filters, kernel_size, padding):
        """Conv2D, max over the mel axis, ReLU, batch norm: (batch, time, filters).

        The original applies ReLU and batch norm to every mel band, then takes the max. Both are
        monotone per channel (rounding too), so taking the max first gives the same values with up to
        96x less work. A channel whose batch-norm scale is negative needs the min instead:
        :func:`load_musicnn` negates its kernel and bias and sets its ``sign`` to -1, as
        ``relu(min z) == relu(-max(-z))``.
        """
        conv = scoped("conv2d", layers.Conv2D(filters, kernel_size, padding=padding))
        sign = layers.DepthwiseConv1D(1, use_bias=False, trainable=False)
        out = batch_norm(layers.ReLU()(sign(ops.max(conv(x), axis=2))))
        signs[last["conv2d"]] = (sign, last["batch_normalization"])
        return out

    spectrogram = keras.Input((MUSICNN_N_FRAMES, MUSICNN_N_MELS), name="log_mel")
    x = batch_norm(layers.Reshape((MUSICNN_N_FRAMES, MUSICNN_N_MELS, 1))(spectrogram))

    # front end: timbral (valid over mel, time padded by hand) and temporal blocks
    padded = layers.ZeroPadding2D(((TIMBRAL_LENGTH // 2, TIMBRAL_LENGTH // 2), (0, 0)))(x)
    front = [front_block(padded, TIMBRAL_FILTERS, (TIMBRAL_LENGTH, w), "valid") for w in TIMBRAL_WIDTHS]
    front += [front_block(x, TEMPORAL_FILTERS, (length, 1), "same") for length in TEMPORAL_LENGTHS]
    front = layers.Concatenate(axis=-1)(front)  # (batch, time, 561)

    # mid end: the checkpoint's (7, C, 1, 64) Conv2D kernels are 1-D convolutions over time
    def mid_block(h):
        conv = layers.Conv1D(MIDEND_FILTERS, MIDEND_LENGTH, padding="same", activation="relu")
        return batch_norm(scoped("conv2d", conv)(h))

    mid1 = mid_block(front)
    mid2 = layers.Add()([mid_block(mid1), mid1])
    mid3 = layers.Add()([mid_block(mid2), mid2])
    features = layers.Concatenate(axis=-1)([front, mid1, mid2, mid3])  # (batch, time, 753)

    # back end: TF1 flattened a (753, 2) stack of [max, mean]: the two interleave
    max_pool = layers.GlobalMaxPooling1D(name="max_pool")(features)
    mean_pool = layers.GlobalAveragePooling1D(name="mean_pool")(features)
    pooled = layers.Flatten()(ops.stack([max_pool, mean_pool], axis=-1))
    hidden = scoped("dense", layers.Dense(BACKEND_UNITS, activation="relu"))(batch_norm(pooled))
    penultimate = batch_norm(hidden)
    taggram = layers.Activation("sigmoid")(scoped("dense", layers.Dense(N_TAGS))(penultimate))
    outputs = {"penultimate": penultimate, "max_pool": max_pool, "mean_pool": mean_pool, "taggram": taggram}
    return keras.Model(spectrogram, outputs, name="musicnn"), scopes, signs


@functools.cache
def load_musicnn(model="MSD_musicnn"):
    """The musicnn network with a shipped checkpoint's weights, built once per process.

    Parameters
    ----------
    model : {"MSD_musicnn", "MTT_musicnn"}
        Weights trained on the Million Song Dataset's 50 most frequent tags (genres among them) or on
        MagnaTagATune's.

    Raises
    ------
    FileNotFoundError
        When the ``musicnn`` package is not installed.
    ValueError
        For an unknown model, or a checkpoint whose variables do not all fit the network.
    """
    prefix = checkpoint_prefix(model)
    import tensorflow as tf

    # not tf.train.load_checkpoint: it follows the folder's `checkpoint` file, which names the author's machine
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    variables = {  # the trained variables: not the optimiser's (*/Adam*, beta1_power, ...)
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "Adam" not in name and not name.endswith("_power")
    }
    network, scopes, signs = build_musicnn()
    used = set()
    for scope, layer in scopes.items():
        if "normalization" in type(layer).__name__.lower():
            weights = [variables[f"{scope}/{n}"] for n in ("gamma", "beta", "moving_mean", "moving_variance")]
        else:
            kernel = variables[f"{scope}/kernel"]
            if kernel.ndim == 4 and len(layer.kernel.shape) == 3:  # (7, C, 1, 64) -> (7, C, 64)
                kernel = kernel.reshape(kernel.shape[0], kernel.shape[1], kernel.shape[3])
            weights = [kernel, variables[f"{scope}/bias"]]
        shapes, expected = [w.shape for w in weights], [tuple(w.shape) for w in layer.get_weights()]
        if shapes != expected:
            raise ValueError(f"{model}: {scope} has shapes {shapes}, the network {expected}")
        if scope in signs:
            # negative-scale channels need the min over mel: the max of the negated convolution
            sign, bn_scope = signs[scope]
            flip = np.where(variables[f"{bn_scope}/gamma"] < 0, -1, 1).astype(np.float32)
            weights = [w * flip for w in weights]
            sign.set_weights([flip.reshape(1, -1, 1)])
        layer.set_weights(weights)
        used.update(name for name in variables if name.startswith(f"{scope}/"))
    unused = sorted(set(variables) - used)
    if unused:
        raise ValueError(f"{model}: checkpoint variables the network does not use: {unused}")
    return network


def run_musicnn(network, batch, batch_size=64):
    """Run a loaded network on ``(n_windows, 187, 96)`` windows, ``batch_size`` at a time.

    Returns float32 ``(n_windows, width)`` arrays by :data:`OUTPUTS` key; empty ones for no windows.
    """
    if len(batch) == 0:
        return {name: np.zeros((0, width), np.float32) for name, width in OUTPUTS.items()}
    parts = [network.predict_on_batch(batch[i : i + batch_size]) for i in range(0, len(batch), batch_size)]
    return {name: np.concatenate([np.asarray(p[name], np.float32) for p in parts]) for name in OUTPUTS}


def embed(y, sr, model="MSD_musicnn"):
    """musicnn's per-window embeddings of a mono waveform ``y`` at ``sr``.

    Returns
    -------
    dict of str to numpy.ndarray, float32
        One row per window of :func:`musicnn_input`: ``penultimate`` (n_windows, 200), the embedding;
        ``max_pool`` and ``mean_pool`` (n_windows, 753), the pooled mid-end features; ``taggram``
        (n_windows, 50), the tag probabilities (labels in the package's ``configuration``). A track
        shorter than one window gives ``n_windows == 0``: callers quarantine it as other short tracks.
    """
    return run_musicnn(load_musicnn(model), musicnn_input(y, sr))
