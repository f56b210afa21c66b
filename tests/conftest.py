"""Fixtures shared by the test modules."""

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real GTZAN excerpts, never copied into the repository (see its README.md).
GTZAN_MINI = REPO_ROOT.parent / "shared" / "data" / "gtzan-mini"


@pytest.fixture(scope="session")
def repo_root():
    """The repository's root folder."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def gtzan_mini():
    """gtzan-mini's root (``genres/<genre>/<genre>.NNNNN.wav`` below it), or skip."""
    if not (GTZAN_MINI / "genres").is_dir():
        pytest.skip(
            f"real-data test: gtzan-mini not found at {GTZAN_MINI} "
            "(expected at ../shared/data/gtzan-mini relative to the repository root)"
        )
    return GTZAN_MINI


@pytest.fixture
def make_wav():
    """``make_wav(path, y, sr=22050, subtype=None)``: write ``y`` as a sound file.

    ``y`` is (n,) for mono or (n, channels); ``subtype`` as soundfile takes it
    (default 16-bit PCM for .wav; ``"FLOAT"`` keeps NaN/inf). Returns the path.
    """
    import soundfile as sf

    def write(path, y, sr=22050, subtype=None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.asarray(y), sr, subtype=subtype)
        return path

    return write


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole workflow, run once on the tiny demo config (tests/config/tiny.yaml).

    Shared by the end-to-end tests so the suite pays for one real run.
    """
    from workflow import run_snakemake

    workdir = tmp_path_factory.mktemp("tiny_run")
    run_snakemake(workdir, "--cores", "2")
    return workdir
