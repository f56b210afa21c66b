"""Network settings from the ``neural:`` config section, and the Keras models they describe.

``network_settings`` gives the settings of one model x input job (the rule's ``params``, so editing one
architecture reruns only its jobs). Keras is imported inside ``build_network`` only: the Snakefile imports
this module, and parsing the workflow should not start TensorFlow.
"""

from __future__ import annotations

import copy

from genreflow.constants import EMBEDDING_INPUTS, TABLE_INPUTS, split_input

#: Training keys: set at the top of ``neural:``, overridable per architecture and input.
TRAINING_DEFAULTS = {
    "epochs": 100, "batch_size": 32, "patience": 5, "monitor": "val_loss", "valid_size": 0.15,
    "learning_rate": 0.001, "seed": 0, "deterministic": True, "max_frames": 0, "scale": True,
}

#: Architecture keys of each kind, with their defaults.
_RECURRENT = {"units": [64, 64], "dense": [64], "dense_activation": "relu", "dropout": 0.0, "l2": 0.0}
KIND_DEFAULTS = {
    "dense": {"units": [512, 512, 512, 128], "activation": "relu", "dropout": 0.1, "l2": 0.001},
    "conv2d": {"filters": [64, 32, 32, 16], "kernels": [3, 3, 2, 1], "pools": [2, 2, 2, 1], "batchnorm": True,
               "activation": "relu", "dense": [64], "dense_activation": "relu", "dropout": 0.3, "l2": 0.001},
    "simple_rnn": _RECURRENT,  # network_settings copies the defaults it uses
    "lstm": _RECURRENT,
}
RECURRENT_KINDS = ("simple_rnn", "lstm")
#: Inputs each kind accepts (tables and embeddings are vectors: only dense layers take them).
SEQUENCE_BASES = ("mfcc", "mel", "mfcc+mel")
VECTOR_BASES = TABLE_INPUTS + EMBEDDING_INPUTS


def network_settings(neural, model, input_name, segments=None):
    """Resolve the settings of one network job from the ``neural:`` config section.

    Later entries override earlier ones: the training keys at the top of ``neural``,
    ``architectures.<model>``, its ``inputs.<base input>`` (``mel`` for ``mel_seg``), then its
    ``inputs.<input>``.

    Parameters
    ----------
    model : str
        A key of ``neural.architectures``.
    input_name : str
        An input name, optionally with the ``_seg`` suffix.
    segments : dict, optional
        The ``segments`` config section; needed for ``_seg`` inputs.

    Returns
    -------
    dict
        ``model``, ``input``, ``base_input``, ``mode`` (``track`` | ``segments``), ``segments``
        (``{"length", "hop"}`` or None), ``training`` and ``architecture`` (with ``kind``); plain data.
    """
    architectures = neural.get("architectures") or {}
    if model not in architectures:
        raise KeyError(
            f"config neural.architectures has no entry '{model}' (known: {sorted(architectures)}); "
            f"add one with a 'kind' ({', '.join(KIND_DEFAULTS)}) or remove '{model}' from neural.models"
        )
    base, is_segments = split_input(input_name)
    if base not in VECTOR_BASES + SEQUENCE_BASES:
        raise ValueError(f"config neural.models.{model}: unknown input '{input_name}'; use one of "
                         f"{list(VECTOR_BASES + SEQUENCE_BASES)}, optionally with the '_seg' suffix")
    merged = copy.deepcopy(architectures[model])
    overrides = merged.pop("inputs", None) or {}
    kind = merged.get("kind")
    if kind not in KIND_DEFAULTS:
        raise ValueError(f"config neural.architectures.{model}.kind is {kind!r}; use one of {list(KIND_DEFAULTS)}")
    for key in (base, input_name):
        merged.update(overrides.get(key, {}))
    training = {k: neural.get(k, v) for k, v in TRAINING_DEFAULTS.items()}
    architecture = {"kind": kind, **copy.deepcopy(KIND_DEFAULTS[kind])}
    where = f"neural.architectures.{model}"
    for key, value in merged.items():
        if key in training:
            training[key] = value
        elif key in architecture:
            architecture[key] = value
        else:
            raise ValueError(f"config {where}: unknown key '{key}' for kind '{kind}'; architecture keys are "
                             f"{sorted(architecture)}, training keys {sorted(training)}")
    if kind == "conv2d":
        lengths = {k: len(architecture[k]) for k in ("filters", "kernels", "pools")}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"config {where}: filters, kernels and pools need one entry per conv layer; "
                             f"got lengths {lengths}")
    if not architecture.get("units", architecture.get("filters")):
        raise ValueError(f"config {where}: needs at least one layer (units or filters)")
    dropout = architecture["dropout"]
    if kind == "dense" and isinstance(dropout, list) and len(dropout) != len(architecture["units"]):
        raise ValueError(f"config {where}: dropout list needs one value per dense layer ({len(architecture['units'])})")
    if base in VECTOR_BASES and kind != "dense":
        what = "a table of statistics" if base in TABLE_INPUTS else "an embedding (one vector per example)"
        raise ValueError(f"config neural.models.{model}: '{input_name}' is {what}; "
                         f"only kind 'dense' takes it (this model is '{kind}')")
    if is_segments and not segments:
        raise ValueError(f"input '{input_name}' needs the segments section (length, hop) of the config")
    window = {"length": float(segments["length"]), "hop": float(segments["hop"])} if is_segments else None
    return {"model": model, "input": input_name, "base_input": base, "mode": "segments" if is_segments else "track",
            "segments": window, "training": training, "architecture": architecture}


def describe(architecture):
    """One line naming the layers, e.g. ``conv2d 64-32-32-16 k3-3-2-1 p2-2-2-1 dense 64``."""
    kind, arch = architecture["kind"], architecture
    if kind == "conv2d":
        return (f"conv2d {_dash(arch['filters'])} k{_dash(arch['kernels'])} p{_dash(arch['pools'])} "
                f"dense {_dash(arch['dense'])}")
    text = f"{kind} {_dash(arch['units'])}"
    if kind in RECURRENT_KINDS and arch["dense"]:
        text += f" dense {_dash(arch['dense'])}"
    return text


def _dash(values):
    return "-".join(map(str, values))


def build_network(architecture, input_shape, n_classes, mean=None, variance=None):
    """Build the Keras model of an architecture: inputs -> scaling -> layers -> logits (no softmax).

    Parameters
    ----------
    architecture : dict
        ``network_settings(...)["architecture"]``.
    input_shape : tuple of int
        One example: ``(n_features,)`` for vectors, ``(frames, features)`` for sequences.
    mean, variance : numpy.ndarray, optional
        Per-feature statistics of the training data, held by a first ``Normalization`` layer so that
        ``model.keras`` scales its own inputs.
    """
    import keras
    from keras import layers, regularizers

    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = inputs
    if mean is not None:
        x = layers.Normalization(axis=-1, mean=mean, variance=variance, name="scaler")(x)
    kind, arch = architecture["kind"], architecture
    if kind == "conv2d":
        if len(x.shape) == 2:
            raise ValueError("a conv2d network needs (frames, features) examples, not a table of statistics")
        x = layers.Reshape((*x.shape[1:], 1))(x)  # one channel: the spectrogram is the image
        for i, (filters, kernel, pool) in enumerate(zip(arch["filters"], arch["kernels"], arch["pools"])):
            x = layers.Conv2D(filters, kernel, padding="same", activation=arch["activation"], name=f"conv_{i + 1}")(x)
            if pool > 1:  # "same" pooling keeps tiny test inputs from shrinking to nothing
                x = layers.MaxPooling2D(pool, padding="same")(x)
            if arch["batchnorm"]:
                x = layers.BatchNormalization()(x)
    elif kind in RECURRENT_KINDS:
        if len(input_shape) != 2:
            raise ValueError(f"a {kind} network needs (frames, features) examples, got shape {tuple(input_shape)}")
        recurrent = layers.LSTM if kind == "lstm" else layers.SimpleRNN
        for i, n in enumerate(arch["units"]):  # the last one returns its final state only
            x = recurrent(n, return_sequences=i < len(arch["units"]) - 1, dropout=arch["dropout"],
                          name=f"{kind}_{i + 1}")(x)
    # the dense layers: a dense network's own, or those after the conv / recurrent layers
    units = arch["units"] if kind == "dense" else arch["dense"]
    activation = arch["activation"] if kind == "dense" else arch["dense_activation"]
    if len(x.shape) > 2:
        x = layers.Flatten()(x)
    rates = arch["dropout"] if isinstance(arch["dropout"], list) else [arch["dropout"]] * len(units)
    l2 = arch["l2"]
    for i, (n, rate) in enumerate(zip(units, rates)):
        x = layers.Dense(n, activation=activation, kernel_regularizer=regularizers.L2(l2) if l2 else None,
                         name=f"dense_{i + 1}")(x)
        if rate:
            x = layers.Dropout(rate)(x)
    return keras.Model(inputs, layers.Dense(n_classes, name="logits")(x), name=kind)
