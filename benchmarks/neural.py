"""Seconds per training epoch of each network (model x input) at the study's sizes.

750 training tracks (the study's 75% of GTZAN) of synthetic data with the real shapes
(mfcc 1293 x 20, mel 128 x 1293, 3 s windows in segment mode), written to a temporary
``dataset.h5`` in the layout of docs/contracts.md and read in batches exactly as the
workflow reads it. Architectures and batch sizes come from config.yaml.

Each job runs ``--steps`` training steps (0: a whole epoch); the first step (graph
tracing) is left out and the mean of the others times the batches of one epoch gives
seconds per epoch. The last line sums the figures and compares the CNN on mel with the
60-70 s/epoch measured before (shared/notes/measurements.md).

    .venv/bin/python benchmarks/neural.py                      # every configured job
    .venv/bin/python benchmarks/neural.py --jobs cnn:mel,lstm:mfcc --steps 20
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from genreflow.constants import GTZAN_GENRES  # noqa: E402
from genreflow.constants import N_FRAMES, N_MELS, N_MFCC
from genreflow.dataset import FRAME_COLUMNS, STATS_COLUMNS  # noqa: E402
from genreflow.models.architectures import network_settings  # noqa: E402

#: CNN on mel, s/epoch on CPU from shared/notes/measurements.md (batch 32, 2 cores).
REFERENCE = {("cnn", "mel"): 65.0}


def write_synthetic_dataset(folder, n_tracks, seed=0):
    """A ``dataset.h5`` and ``features.csv`` of random features with the real shapes."""
    rng = np.random.default_rng(seed)
    labels = np.array([GTZAN_GENRES[i % len(GTZAN_GENRES)] for i in range(n_tracks)])
    tracks = np.array([f"{g}/{g}.{i:05d}" for i, g in enumerate(labels)])
    order = np.argsort(tracks)
    tracks, labels = tracks[order], labels[order]
    path = Path(folder) / "dataset.h5"
    string = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs["genres"] = sorted(set(labels.tolist()))
        f.create_dataset("track", data=tracks.astype(object), dtype=string)
        f.create_dataset("label", data=labels.astype(object), dtype=string)
        f["tempo"] = rng.uniform(60, 180, n_tracks).astype("f4")
        f["n_frames"] = np.full(n_tracks, N_FRAMES, dtype="i4")
        f.create_dataset("stats", data=rng.normal(size=(n_tracks, len(STATS_COLUMNS))).astype("f4"))
        f["stats"].attrs["columns"] = STATS_COLUMNS
        shapes = {
            "frames": (N_FRAMES, len(FRAME_COLUMNS)),
            "mfcc": (N_FRAMES, N_MFCC),
            "mel": (N_MELS, N_FRAMES),
        }
        for name, shape in shapes.items():
            ds = f.create_dataset(name, (n_tracks, *shape), dtype="f4", chunks=(1, *shape))
            for start in range(0, n_tracks, 50):
                stop = min(start + 50, n_tracks)
                ds[start:stop] = rng.random((stop - start, *shape), dtype=np.float32)
        f["frames"].attrs["columns"] = FRAME_COLUMNS
    table = pd.DataFrame(rng.normal(size=(n_tracks, len(STATS_COLUMNS))), columns=STATS_COLUMNS)
    table.insert(0, "filename", [t.split("/")[1] + ".wav" for t in tracks])
    table["label"], table["track"] = labels, tracks
    table.to_csv(Path(folder) / "features.csv", index=False)
    return path, Path(folder) / "features.csv", list(tracks)


def time_epoch(settings, dataset, table, tracks, steps):
    """Seconds per epoch (steady state) and the batches of one epoch."""
    import keras

    from genreflow.examples import make_source
    from genreflow.models.neural import ExampleBatches
    from genreflow.models.neural import compiled_network

    source = make_source(settings["input"], dataset, table, settings["segments"], settings["training"]["max_frames"])
    examples = source.examples(tracks)
    mean, variance = source.fit_scaler(tracks[:50])  # the statistics' values don't change the cost
    model = compiled_network(settings, source.example_shape, len(GTZAN_GENRES), mean, variance)
    batches = ExampleBatches(source, examples, GTZAN_GENRES, settings["training"]["batch_size"], shuffle=True)
    n_batches = len(batches)
    run = n_batches if not steps else min(n_batches, steps + 1)
    stamps, cpu = [], []

    class Stamps(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                stamps.append(time.perf_counter())
                cpu.append(time.process_time())

        def on_train_batch_end(self, batch, logs=None):
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())

    model.fit(batches, epochs=1, steps_per_epoch=run, callbacks=[Stamps()], verbose=0)
    source.close()
    durations, cpu_durations = np.diff(stamps), np.diff(cpu)
    steady = slice(1, None) if len(durations) > 1 else slice(None)
    return {
        "wall": float(durations[steady].mean() * n_batches),
        "cpu": float(cpu_durations[steady].mean() * n_batches),
        "first": float(durations[0]),
        "batches": n_batches,
        "examples": len(examples),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=750, help="training tracks (750: the study's)")
    parser.add_argument("--jobs", default="", help="model:input,... (default: every job of config.yaml)")
    parser.add_argument("--steps", type=int, default=0, help="steps to time per job (0: one whole epoch)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TensorFlow intra-op threads")
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    args = parser.parse_args(argv)

    config = yaml.safe_load(Path(args.config).read_text())
    if args.jobs:
        jobs = [tuple(job.split(":", 1)) for job in args.jobs.split(",")]
    else:
        jobs = [(m, i) for m, inputs in config["neural"]["models"].items() for i in inputs]

    from genreflow.devices import training_device
    from genreflow.models.neural import configure_tensorflow

    configure_tensorflow(args.threads, seed=0, deterministic=config["neural"].get("deterministic", True))
    device = training_device(allow_cpu=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="genreflow-bench-") as folder:
        start = time.perf_counter()
        dataset, table, tracks = write_synthetic_dataset(folder, args.tracks)
        print(
            f"synthetic dataset: {args.tracks} tracks, {dataset.stat().st_size / 2**20:.0f} MiB, "
            f"{time.perf_counter() - start:.1f} s; device {device}, {args.threads} threads, "
            f"load average {os.getloadavg()[0]:.1f} (CPU s: process CPU time, less sensitive to other load)",
            flush=True,
        )
        for model, input_name in jobs:
            settings = network_settings(config["neural"], model, input_name, config["segments"])
            timing = time_epoch(settings, dataset, table, tracks, args.steps)
            results.append((model, input_name, timing["wall"]))
            print(
                f"{model:>5} {input_name:<13} {timing['wall']:8.1f} s/epoch  {timing['cpu']:8.1f} CPU s/epoch  "
                f"({timing['examples']} examples, {timing['batches']} batches of "
                f"{settings['training']['batch_size']}; first step {timing['first']:.1f} s)",
                flush=True,
            )
    total = sum(r[2] for r in results)
    summary = f"summary: {len(results)} jobs, {total:.1f} s per epoch in all on {device}"
    for (model, input_name), reference in REFERENCE.items():
        for m, i, seconds in results:
            if (m, i) == (model, input_name):
                summary += f"; {model}/{input_name} {seconds:.1f} s/epoch = {seconds / reference:.2f}x the {reference:.0f} s measured before"
    print(summary)


if __name__ == "__main__":
    main()
