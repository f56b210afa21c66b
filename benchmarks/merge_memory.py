"""Peak memory of the merge for N synthetic per-track files (default 1000).

Usage: python benchmarks/merge_memory.py [N_TRACKS]

Runs merge_tracks in a child process for 100 and N tracks and reads the child's peak RSS.
Goal: under 500 MiB for 1000 tracks, and not growing with N. Last line: both peaks and
the ratio of the N-track peak to the goal.
"""

import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from synthetic_tracks import write_track_file  # noqa: E402

GOAL_MIB = 500
CHILD = """
import resource, sys
from genreflow.dataset import merge_tracks
files = sys.argv[1:-1]
out = sys.argv[-1]
merge_tracks(files, out + "/dataset.h5", out + "/features.csv", out + "/rejected.csv")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_mib(files, out):
    result = subprocess.run([sys.executable, "-c", CHILD, *map(str, files), str(out)],
                            check=True, capture_output=True, text=True)
    return float(result.stdout.strip().splitlines()[-1])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(n):
            genre = f"genre{i % 10}"
            track = f"{genre}/{genre}.{i:05d}"
            path = tmp / "tracks" / f"{track}.h5"
            write_track_file(path, track, seed=i)
            files.append(path)
        small = peak_mib(files[:100], tmp)
        large = peak_mib(files, tmp)
    print(f"merge peak RSS: 100 tracks {small:.0f} MiB, {n} tracks {large:.0f} MiB "
          f"(growth x{large / small:.2f}); {n}-track peak / goal = {large:.0f}/{GOAL_MIB} MiB = {large / GOAL_MIB:.2f}")


if __name__ == "__main__":
    main()
