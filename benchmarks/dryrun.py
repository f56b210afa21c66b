"""Time `snakemake -n` (DAG building) for the demo and for a folder of 1000 tracks.

Usage: python benchmarks/dryrun.py [N_TRACKS]

The folder holds empty placeholder files (listing does not read audio). Goal: each dry
run under 5 s. Last line: both times and the worse one's ratio to the goal.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
GOAL_S = 5.0


def dry_run(folder=None):
    with tempfile.TemporaryDirectory() as workdir:
        configs = [str(ROOT / "config.yaml")]
        if folder:
            overlay = Path(workdir) / "folder.yaml"
            overlay.write_text(f"dataset:\n  source: folder\n  folder: {folder}\n")
            configs.append(str(overlay))
        command = SNAKEMAKE + ["all", "-n", "--quiet=rules", "--cores", "2", "--directory", workdir,
                               "--snakefile", str(ROOT / "Snakefile"), "--configfile", *configs]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start


def main():
    n_tracks = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as folder:
        genres = [f"genre{g}" for g in range(10)]
        for i in range(n_tracks):
            genre = genres[i % 10]
            path = Path(folder) / genre / f"{genre}.{i:05d}.wav"
            path.parent.mkdir(exist_ok=True)
            path.touch()
        demo = dry_run()
        big = dry_run(folder)
    worst = max(demo, big)
    print(f"dry run: demo {demo:.2f} s, folder of {n_tracks} tracks {big:.2f} s; "
          f"worst/goal = {worst:.2f}/{GOAL_S:.0f} s = {worst / GOAL_S:.2f}")


if __name__ == "__main__":
    main()
