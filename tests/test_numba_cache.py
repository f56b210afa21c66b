"""Parallel jobs cannot corrupt numba's compiled-code cache (genreflow.devices).

Several extraction-like processes start at once on a fresh, empty cache (the moment
numba's unlocked cache can end up with mismatched files and later segfault), each the
way a job starts: ``use_job_numba_cache()``, then librosa compiling its cached functions.
Then a new process calls librosa's own ``chroma_stft``, ``estimate_tuning`` and
``zero_crossing_rate`` from what they left: it must not crash, must give the same
numbers and must find everything compiled.
"""

import os
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
N_JOBS = 3

# A job: a private cache first, then the librosa calls feature extraction makes; then
# librosa's own chroma_stft, estimate_tuning and zero_crossing_rate as a user calls them,
# saved to compare. argv: seed, output file.
JOB = textwrap.dedent(
    """
    import sys
    from genreflow.devices import use_job_numba_cache

    private = use_job_numba_cache()
    import numba
    import numpy as np
    import librosa

    assert numba.config.CACHE_DIR == str(private), numba.config.CACHE_DIR
    rng = np.random.default_rng(int(sys.argv[1]))
    for dtype in (np.float32, np.float64):
        y = (0.1 * rng.standard_normal(22050 * 2)).astype(dtype)
        power = np.abs(librosa.stft(y)) ** 2
        librosa.feature.chroma_stft(S=power, sr=22050)
        librosa.estimate_tuning(S=power, sr=22050)
        librosa.util.localmax(power, axis=0)
        librosa.feature.zero_crossing_rate(y)
        mel_db = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=22050))
        onset = librosa.onset.onset_strength(S=mel_db, sr=22050)
        librosa.feature.tempo(onset_envelope=onset, sr=22050)

    y32 = (0.1 * np.random.default_rng(7).standard_normal(22050 * 2)).astype(np.float32)
    out = {}
    for name, y in (("f32", y32), ("f64", y32.astype(np.float64))):
        out[f"chroma_{name}"] = librosa.feature.chroma_stft(y=y, sr=22050)
        out[f"tuning_{name}"] = np.array(librosa.estimate_tuning(y=y, sr=22050))
        out[f"zcr_{name}"] = librosa.feature.zero_crossing_rate(y)
    np.savez(sys.argv[2], **out)
    """
)


def job_env(tmp_path, shared):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env.update(
        # LLVM at -O0 compiles librosa ~30% faster; the cache holds the same files
        NUMBA_OPT="0",
        GENREFLOW_NUMBA_CACHE=str(shared),
        TMPDIR=str(scratch),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def index_entries(index_path):
    """``{key: data file}`` of a numba cache index (``.nbi``: numba's version, then the
    pickled (source stamp, overloads))."""
    with open(index_path, "rb") as f:
        pickle.load(f)
        _stamp, overloads = pickle.loads(f.read())
    return overloads


def test_parallel_jobs_on_a_fresh_cache_leave_a_cache_librosa_can_use(tmp_path):
    shared = tmp_path / "shared"
    env = job_env(tmp_path, shared)
    started = time.monotonic()
    jobs = [
        subprocess.Popen([sys.executable, "-c", JOB, str(seed), str(tmp_path / f"job{seed}.npz")],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for seed in range(N_JOBS)
    ]
    for job in jobs:
        output, _ = job.communicate(timeout=300)
        assert job.returncode == 0, f"job ended with {job.returncode}:\n{output[-3000:]}"
    cold = time.monotonic() - started
    # each job worked in a folder of its own, removed at exit
    assert not any((tmp_path / "scratch").iterdir())

    [machine] = shared.iterdir()
    current = machine / "current"
    snapshot = current.resolve(strict=True)
    indexes = list(snapshot.rglob("*.nbi"))
    assert any(p.name.startswith("guf-pitch._pi_wrapper") for p in indexes)
    for index in indexes:
        for data_file in index_entries(index).values():
            assert (index.parent / data_file).is_file(), f"{index.name} -> missing {data_file}"

    # a new process on what they left: no crash (a segfault is returncode -11), nothing
    # left to compile, and the numbers each job computed with code it compiled itself
    published = sorted(p.name for p in machine.iterdir())
    started = time.monotonic()
    check = subprocess.run([sys.executable, "-c", JOB, "99", str(tmp_path / "check.npz")],
                           env=env, capture_output=True, text=True, timeout=300)
    warm = time.monotonic() - started
    assert check.returncode == 0, f"returncode {check.returncode}\n{check.stderr[-3000:]}"
    assert sorted(p.name for p in machine.iterdir()) == published
    assert current.resolve() == snapshot
    result = dict(np.load(tmp_path / "check.npz"))
    for seed in range(N_JOBS):
        computed = dict(np.load(tmp_path / f"job{seed}.npz"))
        assert computed.keys() == result.keys()
        for name in result:
            np.testing.assert_array_equal(result[name], computed[name], err_msg=name)
    print(f"{N_JOBS} cold jobs side by side {cold:.1f} s, then one warm job {warm:.1f} s")


def test_a_job_script_has_a_cache_of_its_own_before_numba_loads(tmp_path):
    """Job scripts call setup_logging first: from then on numba caches in a private folder."""
    code = (
        "from genreflow.logs import setup_logging\n"
        "setup_logging(None)\n"
        "import os, numba\n"
        "print(os.environ['NUMBA_CACHE_DIR'], numba.config.CACHE_DIR)\n"
    )
    env = job_env(tmp_path, tmp_path / "shared")
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
        for _ in range(2)
    ]
    folders = []
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
        environment, numba_sees = run.stdout.split()
        assert environment == numba_sees
        assert Path(environment).parent == tmp_path / "scratch"
        folders.append(environment)
    assert folders[0] != folders[1]


def test_a_snapshot_is_published_whole_and_kept_while_current(tmp_path):
    from genreflow import devices

    shared = tmp_path / "shared"
    private = tmp_path / "private"
    (private / "sub").mkdir(parents=True)
    (private / "sub" / "f.nbi").write_bytes(b"index")
    devices._publish(private, shared, seeded={})
    assert not private.exists()
    first = (shared / "current").resolve(strict=True)
    assert (first / "sub" / "f.nbi").read_bytes() == b"index"

    # a job that compiled nothing new publishes nothing
    copy = tmp_path / "copy"
    seeded = devices._copy_current(shared, copy)
    devices._publish(copy, shared, seeded)
    assert (shared / "current").resolve() == first

    # one that did replaces it; the old one stays for readers until it is old
    copy = tmp_path / "copy2"
    seeded = devices._copy_current(shared, copy)
    (copy / "sub" / "g.nbc").write_bytes(b"data")
    devices._publish(copy, shared, seeded)
    second = (shared / "current").resolve()
    assert second != first and first.exists()
    assert sorted(p.name for p in (second / "sub").iterdir()) == ["f.nbi", "g.nbc"]
    assert not [p for p in shared.iterdir() if p.name.startswith(".")]


def test_an_unwritable_shared_folder_only_costs_sharing(tmp_path, caplog):
    from genreflow import devices

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o500)
    private = tmp_path / "private"
    private.mkdir()
    (private / "f.nbi").write_bytes(b"index")
    devices._publish(private, shared, seeded={})
    assert not private.exists()
