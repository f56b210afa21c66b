"""musicnn embedding time per 30-s track on one CPU core (genreflow.embeddings).

Usage: python benchmarks/embedding.py [AUDIO_DIR] [--limit N] [--repeat R]
       [--model MSD_musicnn|MTT_musicnn] [--clock wall|cpu]

AUDIO_DIR defaults to gtzan-mini (../shared/data/gtzan-mini). On N tracks (default 10,
spread over the sorted files: every genre), decoded beforehand as the extraction stage
decodes them (``load_audio``, 22050 Hz; decoding is not timed), each track's
``embed`` (resample to 16 kHz + log-mel windows + the network) is run R times (default
3) and its fastest run kept; the figure is the median over tracks, and its split into
input and network. One untimed warm-up track first (building the model and reading the
checkpoint, TensorFlow's tracing, librosa's filter banks): that cost is paid once per
process, so once per shard job, and is printed apart.

One core: TensorFlow runs with one intra-op and one inter-op thread, BLAS/OpenMP with one
thread, before either loads. ``--clock cpu`` times this process's CPU time instead of
wall time, steadier when other jobs share the cores.
Goal: at most 0.4 s per 30-s track. Last line: the figure and its ratio to the goal.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

from genreflow import embeddings  # noqa: E402
from genreflow.audio import load_audio  # noqa: E402
from genreflow.constants import AUDIO_EXTENSIONS, MUSICNN_MODELS  # noqa: E402

GOAL_S = 0.4
GTZAN_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "gtzan-mini"


def pick_tracks(audio_dir, limit):
    """``limit`` files spread evenly over the sorted audio files (all genres, not one)."""
    files = sorted(p for p in Path(audio_dir).rglob("*") if p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS)
    if not files:
        sys.exit(f"no audio files under {audio_dir}")
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


def timed(clock, func, *args):
    start = clock()
    result = func(*args)
    return clock() - start, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_dir", nargs="?", default=GTZAN_MINI)
    parser.add_argument("--limit", type=int, default=10, help="tracks to time (0: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per track")
    parser.add_argument("--model", choices=MUSICNN_MODELS, default="MSD_musicnn")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    audio = [load_audio(path) for path in pick_tracks(args.audio_dir, args.limit)]
    tracks = pick_tracks(args.audio_dir, args.limit)

    warm_up, _ = timed(clock, lambda: embeddings.embed(*audio[0], model=args.model))
    print(f"warm-up (model, checkpoint, tracing; once per process): {warm_up:.2f} s", flush=True)

    network = embeddings.load_musicnn(args.model)
    totals, inputs, nets = [], [], []
    for path, (y, sr) in zip(tracks, audio):
        runs = []
        for _ in range(args.repeat):
            t_in, batch = timed(clock, embeddings.musicnn_input, y, sr)
            t_net, _ = timed(clock, embeddings.run_musicnn, network, batch)
            runs.append((t_in + t_net, t_in, t_net))
        total, t_in, t_net = min(runs)
        # per 30 s of audio, so a shorter or longer track counts for what it holds
        per_30 = 30.0 / (len(y) / sr)
        totals.append(total * per_30)
        inputs.append(t_in * per_30)
        nets.append(t_net * per_30)
        print(
            f"{path.name}: {len(batch)} windows, {total:.3f} s (input {t_in:.3f}, network {t_net:.3f})",
            flush=True,
        )

    med = statistics.median(totals)
    print(
        f"{len(tracks)} tracks, {args.model}, one core, median {args.clock} s per 30-s track: "
        f"{med:.3f} (input {statistics.median(inputs):.3f}, network {statistics.median(nets):.3f}) "
        f"| {med / GOAL_S:.2f}x the {GOAL_S} s goal"
    )


if __name__ == "__main__":
    main()
