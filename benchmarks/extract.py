"""Per-track feature extraction time: the notebook way, genreflow's, and the floor.

Usage: python benchmarks/extract.py AUDIO_DIR [--limit N] [--repeat R] [--clock wall|cpu]

On the same tracks (N spread over the sorted files under AUDIO_DIR, default 20),
interleaved so that other load on the machine hits all three alike:
- notebook: ``librosa.load`` + one librosa function per feature, each on the
  waveform (``extract_features_reference``; every call recomputes its STFT);
- ours: ``load_audio`` + ``extract_features`` (one STFT);
- floor: ``load_audio`` + one ``librosa.stft``, the least any extractor does.
Each track is timed R times per way (default 3) and its fastest run kept; the
figures are medians over tracks, after one untimed warm-up run of each way.
``--clock cpu`` times this process's CPU time instead of wall time: steadier
when other jobs share the cores (everything here runs on one thread).
BLAS/OpenMP run single-threaded, as in the Snakemake job (``threads: 1`` sets
OMP/OPENBLAS_NUM_THREADS=1); set GENREFLOW_BENCH_THREADS to change that.
Goals: ours at least 5x faster than the notebook way, and within 3x of the floor.
Last line: ms/track of each, the speed-up and the ratio to the floor.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# Before numpy loads its BLAS. Many small BLAS calls on threads that must wait for
# busy cores are slow, so this matters on a loaded machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = os.environ.get("GENREFLOW_BENCH_THREADS", "1")

import librosa  # noqa: E402
import numpy as np  # noqa: E402

from genreflow.audio import load_audio  # noqa: E402
from genreflow.features import (  # noqa: E402
    HOP_LENGTH,
    N_FFT,
    extract_features,
    extract_features_reference,
)

EXTENSIONS = {".wav", ".au", ".flac", ".ogg", ".mp3"}
SPEEDUP_GOAL = 5.0
FLOOR_RATIO_GOAL = 3.0


def notebook(path):
    y, sr = librosa.load(path, sr=22050, mono=True)
    return extract_features_reference(y, sr)


def ours(path):
    y, sr = load_audio(path)
    return extract_features(y, sr)


def floor(path):
    y, _ = load_audio(path)
    return librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH)


WAYS = {"notebook": notebook, "ours": ours, "floor": floor}


def pick_tracks(audio_dir, limit):
    """``limit`` files spread evenly over the sorted audio files (all genres, not one)."""
    files = sorted(p for p in Path(audio_dir).rglob("*") if p.suffix.lower() in EXTENSIONS)
    if not files:
        sys.exit(f"no audio files ({', '.join(sorted(EXTENSIONS))}) under {audio_dir}")
    if limit and limit < len(files):
        files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
    return files


def best_ms(func, path, repeat, clock):
    times = []
    for _ in range(repeat):
        start = clock()
        func(path)
        times.append(clock() - start)
    return 1e3 * min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_dir")
    parser.add_argument("--limit", type=int, default=20, help="tracks to time (0: all)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per track and way")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    tracks = pick_tracks(args.audio_dir, args.limit)
    for func in WAYS.values():  # warm-up: filter banks, numba caches, page cache
        func(tracks[0])
    ms = {name: [] for name in WAYS}
    for path in tracks:
        for name, func in WAYS.items():
            ms[name].append(best_ms(func, path, args.repeat, clock))
        print(
            f"{path.name}: " + ", ".join(f"{name} {ms[name][-1]:.1f} ms" for name in WAYS),
            flush=True,
        )
    med = {name: statistics.median(values) for name, values in ms.items()}
    speedup = med["notebook"] / med["ours"]
    to_floor = med["ours"] / med["floor"]
    print(
        f"{len(tracks)} tracks, median {args.clock} ms/track: notebook {med['notebook']:.1f}, "
        f"ours {med['ours']:.1f}, floor {med['floor']:.1f} | speed-up "
        f"{speedup:.1f}x (goal >= {SPEEDUP_GOAL:g}x) | ours/floor {to_floor:.2f}x "
        f"(goal <= {FLOOR_RATIO_GOAL:g}x)"
    )


if __name__ == "__main__":
    main()
