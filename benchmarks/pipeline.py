"""Audio to dataset.h5: the workflow against the notebook loop, on the same tracks.

Usage: python benchmarks/pipeline.py [AUDIO_DIR] [--copies 1 10] [--cores 2] [--keep]

AUDIO_DIR is a ``<genre>/<file>`` tree (default: ../shared/data/gtzan-mini/genres). For
each entry of ``--copies`` (default 1 and 10: gtzan-mini's 101 tracks and 1010), a
scratch folder gets that many links to every track under new names
(``blues.00000.c3.wav``), and then, one after the other:
- notebook: one Python process that loads each track with ``librosa.load`` and calls
  each librosa feature function on the waveform (``extract_features_reference``: the
  study's way, each call recomputing its STFT), keeping the results in memory; timed
  from process start (imports included) to its end;
- workflow: ``snakemake --cores N results/features/dataset.h5`` with
  ``dataset.source: folder`` and ``features.embedding.model: none`` (the notebook
  computes no embedding) on the scratch folder, in an empty work folder (the
  repository's profiles/default applies, as for a user); timed from process start to
  its end.
Both run with OMP/OPENBLAS threads at 1, as Snakemake gives a 1-thread job, and both
start with the audio files and the libraries in the page cache (:func:`warm_caches`).

Where the workflow's time goes comes from its own logs: each extraction job logs its
imports, its extraction and its process time; the merge job its own benchmark file;
Snakemake itself (start-up, DAG, scheduling, job launches) is the rest of the wall time.

Wall times depend on what else runs on the machine: the load average before and after
each workflow run is printed, and CPU-seconds (user + system of every process, Snakemake
and its jobs included) beside them.

Goals (issue 11): the workflow at least 2.5x faster than the notebook loop at 101
tracks and 8x at ~1000. Last line: both times and the ratio at each size.
"""

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AUDIO = ROOT.parent / "shared" / "data" / "gtzan-mini" / "genres"
EXTENSIONS = {".wav", ".au", ".flac", ".ogg", ".mp3"}
GOALS = {1: 2.5, 10: 8.0}  # copies of gtzan-mini -> speed-up goal

NOTEBOOK = """
import sys
import librosa
from genreflow.features import extract_features_reference
features = []
for path in sys.argv[1:]:
    y, sr = librosa.load(path, sr=22050, mono=True)
    features.append(extract_features_reference(y, sr))
print(len(features))
"""


def link_tracks(audio_dir, dest, copies):
    """``copies`` links to each track of ``audio_dir`` under ``dest/<genre>/``; the paths."""
    sources = sorted(p for p in Path(audio_dir).rglob("*") if p.suffix.lower() in EXTENSIONS)
    if not sources:
        sys.exit(f"no audio files under {audio_dir}")
    paths = []
    for source in sources:
        for copy in range(copies):
            link = dest / source.parent.name / f"{source.stem}.c{copy}{source.suffix}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source.resolve())
            paths.append(link)
    return sorted(paths)


def single_threaded_env():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


def cpu_seconds():
    """User + system CPU time of every finished child process and their descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def warm_caches(paths):
    """Read the audio files and import the libraries once, untimed.

    This machine's page cache is paged out after about a minute unused, so whichever
    side ran second would read the audio and the libraries from memory and the first
    from disk; warmed before each timed run, both read them from memory.
    """
    for path in paths:
        Path(path).read_bytes()
    subprocess.run([sys.executable, "-c", "import librosa, h5py, pandas, snakemake, genreflow.features, "
                    "genreflow.dataset, genreflow.sources"], check=True, env=single_threaded_env())


def time_notebook(paths):
    """(wall, CPU) seconds of the notebook loop."""
    cpu, start = cpu_seconds(), time.perf_counter()
    subprocess.run([sys.executable, "-c", NOTEBOOK, *map(str, paths)], check=True,
                   env=single_threaded_env(), capture_output=True)
    return time.perf_counter() - start, cpu_seconds() - cpu


def time_workflow(folder, workdir, cores):
    """(wall, CPU) seconds of Snakemake and all its jobs."""
    overlay = workdir / "folder.yaml"
    workdir.mkdir(parents=True)
    # the study's features only, as the notebook loop computes them (musicnn embeddings
    # add ~0.34 CPU-s a track and TensorFlow's start-up a shard: docs/benchmarks.md)
    overlay.write_text(f"dataset:\n  source: folder\n  folder: {folder}\nfeatures:\n  embedding:\n    model: none\n")
    command = [sys.executable, "-m", "snakemake", "results/features/dataset.h5",
               "--cores", str(cores), "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir),
               "--configfile", str(ROOT / "config.yaml"), str(overlay)]
    cpu, start = cpu_seconds(), time.perf_counter()
    result = subprocess.run(command, env=single_threaded_env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wall, cpu_seconds() - cpu


def breakdown(workdir, wall, cores):
    """Seconds of the workflow's parts, from the jobs' own logs."""
    imports = extracting = job_wall = core_seconds = 0.0
    jobs = 0
    for log in (workdir / "results/logs/extract_features").rglob("*.log"):
        text = log.read_text()
        jobs += 1
        start = re.search(r"(\d+) processes \(imports took ([\d.]+) s", text)
        imports += float(start.group(2))
        done = re.search(r"([\d.]+) s extracting, ([\d.]+) s in this process", text)
        extracting += float(done.group(1))
        job_wall += float(done.group(2))
        core_seconds += float(done.group(2)) * int(start.group(1))  # cores the job held
    merge = pd.read_csv(workdir / "results/benchmarks/merge_features/merge.tsv", sep="\t")["s"].iloc[0]
    return {
        "extraction jobs": jobs,
        "seconds in extraction jobs: imports": imports,
        "extracting (first track pays librosa's lazy imports)": extracting,
        "extraction jobs' wall time": job_wall,
        "merge job": merge,
        # what the extraction jobs (spread over `cores` cores) and the merge do not explain
        "wall left to Snakemake and process launches": wall - core_seconds / cores - merge,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio_dir", nargs="?", default=str(DEFAULT_AUDIO))
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folders")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="genreflow-pipeline-"))
    results = []
    try:
        for copies in args.copies:
            folder = scratch / f"x{copies}" / "genres"
            paths = link_tracks(args.audio_dir, folder, copies)
            workdir = scratch / f"x{copies}" / "work"
            load = os.getloadavg()[0]
            warm_caches(paths)
            workflow, workflow_cpu = time_workflow(folder, workdir, args.cores)
            warm_caches(paths)
            notebook, notebook_cpu = time_notebook(paths)
            parts = breakdown(workdir, workflow, args.cores)
            print(f"{len(paths)} tracks (load average {load:.1f} -> {os.getloadavg()[0]:.1f}): "
                  f"notebook {notebook:.1f} s wall ({notebook_cpu:.1f} CPU-s), workflow "
                  f"{workflow:.1f} s wall ({workflow_cpu:.1f} CPU-s, --cores {args.cores}): "
                  f"{notebook / workflow:.2f}x wall, {notebook_cpu / workflow_cpu:.2f}x CPU",
                  flush=True)
            for name, value in parts.items():
                print(f"    {name}: {value:.1f}" if isinstance(value, float) else f"    {name}: {value}")
            results.append((len(paths), notebook, workflow, GOALS.get(copies), notebook_cpu / workflow_cpu))
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("audio to dataset.h5 | " + " | ".join(
        f"{n} tracks: notebook {nb:.1f} s, workflow {wf:.1f} s, {nb / wf:.2f}x"
        + (f" (goal >= {goal:g}x)" if goal else "") + f" ({cpu:.2f}x in CPU-s)"
        for n, nb, wf, goal, cpu in results
    ))


if __name__ == "__main__":
    main()
