"""Peak memory of the merge for N synthetic tracks in shard files (default 1000).

Usage: python benchmarks/merge_memory.py [N_TRACKS]

Writes shard files of 50 tracks (10 genres), runs merge_shards in a child process for the
first 100 tracks and for all N, and reads the child's peak RSS.
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
from synthetic_tracks import write_shard_file  # noqa: E402

GOAL_MIB = 500
CHILD = """
import resource, sys
from genreflow.dataset import merge_shards
files = sys.argv[1:-1]
out = sys.argv[-1]
merge_shards(files, out + "/dataset.h5", out + "/features.csv", out + "/rejected.csv")
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
        for first in range(0, n, 50):  # shards of 50 tracks, 5 tracks of each genre
            specs = []
            for i in range(first, min(n, first + 50)):
                genre = f"genre{i % 10}"
                specs.append((f"{genre}/{genre}.{i:05d}", 1293, i, "ok", ""))
            files.append(tmp / "shards" / f"{first // 50}-of-{(n + 49) // 50}.h5")
            write_shard_file(files[-1], specs)
        small = peak_mib(files[:2], tmp)
        large = peak_mib(files, tmp)
    print(f"merge peak RSS: 100 tracks {small:.0f} MiB, {n} tracks {large:.0f} MiB "
          f"(growth x{large / small:.2f}); {n}-track peak / goal = {large:.0f}/{GOAL_MIB} MiB = {large / GOAL_MIB:.2f}")


if __name__ == "__main__":
    main()
