"""Make tests/data/musicnn_reference.npz: musicnn's outputs from its original TF1 graph.

The reference that ``tests/test_embeddings.py`` holds genreflow's Keras 3 rebuild
(``genreflow/embeddings.py``) to. It runs the graph code of the PyPI package
``musicnn==0.1.0`` itself (``musicnn.models.define_model``, restored with TF1's
``Saver`` from the package's checkpoints, as ``musicnn.extractor.extractor`` does), so it
needs an environment of its own, throw-away and outside the repository, because that
code uses ``tf.compat.v1.layers`` (``tf_keras``, graph mode)::

    python3 -m venv /tmp/musicnn-ref
    /tmp/musicnn-ref/bin/pip install tensorflow-cpu==2.21.0 tf_keras librosa==0.11.0 soundfile
    /tmp/musicnn-ref/bin/pip install --no-deps musicnn==0.1.0
    TF_USE_LEGACY_KERAS=1 /tmp/musicnn-ref/bin/python tests/data/make_musicnn_fixture.py \
        ../shared/data/gtzan-mini

(made with tf_keras 2.21.0, numpy 2.4, librosa 0.11.0, Python 3.11). It does not import
genreflow: the input is computed here the package's way (``musicnn.extractor.batch_data``:
``librosa.load(path, sr=16000)``, 96-band mel, n_fft 512, hop 256, ``log10(10000 * mel
+ 1)``, 187-frame windows stepped by 187 frames), except that the log is taken in float32:
the package casts the mel spectrogram to float16 first, and under numpy 2 the product
stays float16 and overflows to inf (every window with an inf then gets the same output).

The tracks are three gtzan-mini excerpts (blues, classical, metal; never copied into the
repository). Saved per model (``MSD_musicnn``, ``MTT_musicnn``) and track, as float32:
``<model>/<track>/<output>`` for ``penultimate`` (n_windows, 200), ``max_pool`` and
``mean_pool`` (n_windows, 753), ``taggram`` (n_windows, 50); and per track
``input/<track>/mean`` and ``/max`` (n_windows,), the log-mel windows' mean and maximum,
so a failing comparison tells the input from the network.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from musicnn import configuration, models  # noqa: E402

TRACKS = ("blues/blues.00000.wav", "classical/classical.00000.wav", "metal/metal.00000.wav")
MODELS = ("MSD_musicnn", "MTT_musicnn")
OUT = Path(__file__).resolve().parent / "musicnn_reference.npz"


def input_windows(path):
    """``musicnn.extractor.batch_data`` with the log taken in float32, no float16 cast."""
    n_frames = (
        librosa.time_to_frames(
            3, sr=configuration.SR, n_fft=configuration.FFT_SIZE, hop_length=configuration.FFT_HOP
        )
        + 1
    )
    audio, sr = librosa.load(path, sr=configuration.SR)
    mel = librosa.feature.melspectrogram(
        y=audio,
        sr=sr,
        hop_length=configuration.FFT_HOP,
        n_fft=configuration.FFT_SIZE,
        n_mels=configuration.N_MELS,
    ).T.astype(np.float32)
    rep = np.log10(np.float32(10000) * mel + np.float32(1))
    starts = range(0, rep.shape[0] - n_frames + 1, n_frames)
    return np.stack([rep[t : t + n_frames] for t in starts]).astype(np.float32), n_frames


def run_graph(model, batches, n_frames):
    """The package's graph for ``model``, restored from its checkpoint, on each batch."""
    labels = configuration.MSD_LABELS if model.startswith("MSD") else configuration.MTT_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, n_frames, configuration.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        y, *_, mean_pool, max_pool, penultimate = models.define_model(x, is_training, model, len(labels))
        taggram = tf.nn.sigmoid(y)
    with tf.compat.v1.Session() as sess:
        # unlike the package's extractor, no try/except: a failed restore must stop here
        tf.compat.v1.train.Saver().restore(sess, os.path.join(os.path.dirname(models.__file__), model) + "/")
        fetch = {"penultimate": penultimate, "max_pool": max_pool, "mean_pool": mean_pool, "taggram": taggram}
        return [sess.run(fetch, feed_dict={x: batch, is_training: False}) for batch in batches]


def main(gtzan_mini):
    tf.compat.v1.disable_eager_execution()
    root = Path(gtzan_mini) / "genres"
    names = [Path(t).stem for t in TRACKS]
    inputs = []
    arrays = {}
    for name, rel in zip(names, TRACKS):
        batch, n_frames = input_windows(root / rel)
        inputs.append(batch)
        arrays[f"input/{name}/mean"] = batch.mean(axis=(1, 2))
        arrays[f"input/{name}/max"] = batch.max(axis=(1, 2))
    for model in MODELS:
        for name, result in zip(names, run_graph(model, inputs, n_frames)):
            for output, value in result.items():
                arrays[f"{model}/{name}/{output}"] = np.asarray(value, np.float32)
    arrays["tracks"] = np.array(TRACKS)
    np.savez_compressed(OUT, **arrays)
    print(f"{OUT}: {OUT.stat().st_size} bytes, {len(arrays)} arrays")
    for name in names:
        print(
            name,
            arrays[f"MSD_musicnn/{name}/penultimate"].shape,
            "top MSD tags:",
            [
                configuration.MSD_LABELS[i]
                for i in np.argsort(-arrays[f"MSD_musicnn/{name}/taggram"].mean(0))[:3]
            ],
        )


if __name__ == "__main__":
    main(
        sys.argv[1]
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[3] / "shared" / "data" / "gtzan-mini"
    )
