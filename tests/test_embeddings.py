"""musicnn rebuilt in Keras 3 (genreflow.embeddings) against its original TF1 graph.

The reference outputs in tests/data/musicnn_reference.npz come from the package's own
graph code, run once in a separate environment (tests/data/make_musicnn_fixture.py says
how); the weights come from the PyPI package musicnn==0.1.0 (``--no-deps``).
"""

import importlib.util
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from genreflow import embeddings
from genreflow.constants import MUSICNN_N_FRAMES, MUSICNN_N_MELS, MUSICNN_SR

FIXTURE = Path(__file__).resolve().parent / "data" / "musicnn_reference.npz"
RTOL = 1e-4

needs_weights = pytest.mark.skipif(
    importlib.util.find_spec("musicnn") is None,
    reason=f"the musicnn weights are not installed ({embeddings.INSTALL_HINT}; `make venv` does it)",
)


@pytest.fixture(scope="module")
def reference():
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def assert_close(actual, expected, what):
    """Equal to RTOL relative: per element, plus RTOL x the array's largest magnitude for
    elements near zero (ReLU outputs and batch norm shifts cross zero)."""
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def test_fixture_is_small_and_complete(reference):
    assert FIXTURE.stat().st_size < 1_000_000
    for track in reference["tracks"]:
        name = Path(str(track)).stem
        for model in ("MSD_musicnn", "MTT_musicnn"):
            for output, width in embeddings.OUTPUTS.items():
                assert reference[f"{model}/{name}/{output}"].shape == (10, width)


@needs_weights
@pytest.mark.parametrize("model", ["MSD_musicnn", "MTT_musicnn"])
def test_rebuild_equals_original_graph(model, reference, gtzan_mini):
    import librosa

    for track in reference["tracks"]:
        name = Path(str(track)).stem
        y, sr = librosa.load(gtzan_mini / "genres" / str(track), sr=None)
        batch = embeddings.musicnn_input(y, sr)
        # the input first, so a failure says which half differs
        assert_close(batch.mean(axis=(1, 2)), reference[f"input/{name}/mean"], f"{name}: input mean")
        assert_close(batch.max(axis=(1, 2)), reference[f"input/{name}/max"], f"{name}: input max")
        out = embeddings.embed(y, sr, model=model)
        for output in embeddings.OUTPUTS:
            assert out[output].dtype == np.float32
            assert_close(out[output], reference[f"{model}/{name}/{output}"], f"{model} {name} {output}")


def test_input_windows_are_float32_and_finite():
    """The package's float16 log overflowed to inf on loud tracks; ours stays finite."""
    rng = np.random.default_rng(0)
    y = np.clip(rng.normal(0, 1.0, 10 * MUSICNN_SR), -1, 1).astype(np.float32)  # loud noise
    batch = embeddings.musicnn_input(y, MUSICNN_SR)
    assert batch.shape == (3, MUSICNN_N_FRAMES, MUSICNN_N_MELS)
    assert batch.dtype == np.float32
    assert np.isfinite(batch).all()
    assert batch.max() > np.log10(np.finfo(np.float16).max / 10000)  # float16 would overflow here


def test_windows_do_not_overlap_and_drop_the_tail():
    frames = np.arange(400 * 2, dtype=np.float32).reshape(400, 2)
    out = embeddings.windows(frames, length=187)
    assert out.shape == (2, 187, 2)
    np.testing.assert_array_equal(out[1, 0], frames[187])
    assert embeddings.windows(frames[:186], length=187).shape == (0, 187, 2)


@pytest.mark.parametrize("seconds, sr", [(30, 22050), (2.9, 22050), (3.0, 16000), (6.0, 44100), (0.5, 8000)])
def test_n_windows_predicts_musicnn_input(seconds, sr):
    y = np.zeros(int(seconds * sr), np.float32)
    assert embeddings.n_windows(len(y), sr) == len(embeddings.musicnn_input(y, sr))


@needs_weights
def test_track_shorter_than_one_window_gives_zero_windows():
    """A 2.5-s track makes no 3-s window: every output is empty (the caller quarantines
    the track as it does other short tracks), and nothing runs through the network."""
    y = np.sin(2 * np.pi * 440 * np.arange(int(2.5 * 22050)) / 22050).astype(np.float32)
    out = embeddings.embed(y, 22050)
    assert set(out) == set(embeddings.OUTPUTS)
    for output, width in embeddings.OUTPUTS.items():
        assert out[output].shape == (0, width)
        assert out[output].dtype == np.float32


@needs_weights
def test_models_load_once_per_process_and_differ():
    msd = embeddings.load_musicnn("MSD_musicnn")
    mtt = embeddings.load_musicnn("MTT_musicnn")
    assert embeddings.load_musicnn("MSD_musicnn") is msd
    assert mtt is not msd
    x = np.random.default_rng(1).uniform(0, 3, (2, MUSICNN_N_FRAMES, MUSICNN_N_MELS)).astype(np.float32)
    a, b = embeddings.run_musicnn(msd, x), embeddings.run_musicnn(mtt, x)
    assert a["penultimate"].shape == b["penultimate"].shape == (2, 200)
    assert not np.allclose(a["penultimate"], b["penultimate"])
    # the max/mean features are the pooled mid-end: max >= mean everywhere
    assert (a["max_pool"] >= a["mean_pool"] - 1e-6).all()


def test_unknown_model_is_refused_by_name():
    with pytest.raises(ValueError, match="MSD_musicnn, MTT_musicnn"):
        embeddings.checkpoint_prefix("MSD_vgg")


def test_musicnn_is_installed_without_dependencies_at_one_pin(repo_root):
    """requirements.txt pins musicnn marked `# no-deps`; `make venv` leaves such lines out
    of its `pip install -r` and installs them with --no-deps; the conda audio env's
    post-deploy script installs the same pin the same way."""
    lines = (repo_root / "requirements.txt").read_text().splitlines()
    (line,) = [line for line in lines if line.startswith("musicnn==")]
    pin, marker = (part.strip() for part in line.split("#", 1))
    assert marker == "no-deps"
    # what `make venv` would run (printed, not run), CPU and GPU
    for gpu in ("0", "1"):
        dry_run = subprocess.run(["make", "-n", "-B", "venv", f"GPU={gpu}"], cwd=repo_root, capture_output=True,
                                 text=True, check=True).stdout
        assert dry_run.count("grep -v '# no-deps'") == 1  # left out of the list pip resolves
        (no_deps,) = [line for line in dry_run.splitlines() if "pip install" in line and "--no-deps" in line]
        sed = re.search(r"\$\((sed .*? requirements\.txt)\)", no_deps).group(1)
        assert subprocess.run(["sh", "-c", sed], cwd=repo_root, capture_output=True, text=True).stdout.split() == [pin]
    deploy = (repo_root / "envs" / "audio.post-deploy.sh").read_text()
    assert f"pip install --no-deps {pin}\n" in deploy
