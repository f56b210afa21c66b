"""A network job given a GPU that TensorFlow cannot see stops at once (genreflow.devices).

TensorFlow here is tensorflow-cpu, so it never sees a GPU: the GPU a scheduler hands a
job is faked by the environment variables it would set.
"""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genreflow import devices

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_gpu_given(monkeypatch):
    for variable in devices.GPU_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


GIVEN = [
    ("CUDA_VISIBLE_DEVICES", "0"),
    ("CUDA_VISIBLE_DEVICES", "GPU-8a3e1c2d-0000-1111-2222-333344445555"),
    ("SLURM_GPUS", "1"),
    ("SLURM_GPUS", "a100:2"),
    ("SLURM_JOB_GPUS", "0,1"),
    ("SLURM_STEP_GPUS", "3"),
]


@pytest.mark.parametrize("variable, value", GIVEN)
def test_a_job_given_a_gpu_tensorflow_cannot_see_stops_naming_the_install(
    no_gpu_given, monkeypatch, variable, value
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(RuntimeError) as error:
        devices.training_device(allow_cpu=False)
    message = str(error.value)
    assert f"{variable}={value}" in message
    assert "built without CUDA (tensorflow-cpu)" in message
    for fix in ("make venv GPU=1", "neural: {install: gpu}", "neural: {allow_cpu: true}"):
        assert fix in message


@pytest.mark.parametrize("variable, value", GIVEN[:3])
def test_allow_cpu_trains_on_the_cpu_anyway(no_gpu_given, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    assert devices.training_device(allow_cpu=True) == "CPU"


@pytest.mark.parametrize(
    "variable, value",
    [(None, None), ("CUDA_VISIBLE_DEVICES", ""), ("CUDA_VISIBLE_DEVICES", "-1"),
     ("CUDA_VISIBLE_DEVICES", "NoDevFiles"), ("SLURM_GPUS", "0"), ("SLURM_JOB_GPUS", "")],
)
def test_a_job_given_no_gpu_trains_on_the_cpu(no_gpu_given, monkeypatch, variable, value):
    if variable:
        monkeypatch.setenv(variable, value)
    assert devices.assigned_gpu() is None
    assert devices.training_device(allow_cpu=False) == "CPU"


def test_a_gpu_tensorflow_sees_is_named(no_gpu_given, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(devices, "tensorflow_gpus", lambda: ["NVIDIA H200"])
    assert devices.training_device(allow_cpu=False) == "NVIDIA H200"


def test_the_environment_can_be_passed_in(no_gpu_given):
    assert devices.assigned_gpu({"SLURM_STEP_GPUS": "2"}) == "SLURM_STEP_GPUS=2"
    with pytest.raises(RuntimeError):
        devices.training_device(environ={"SLURM_STEP_GPUS": "2"})


def test_the_config_fixes_the_message_names_work_when_typed(no_gpu_given, monkeypatch, tmp_path):
    """`--config 'neural={allow_cpu: true}'` and `neural: {install: gpu}` in a config
    file pass the schema; the rule hands allow_cpu to the job as a bool."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(RuntimeError) as error:
        devices.training_device()
    message = str(error.value)
    [typed] = re.findall(r"--config '[^']*'", message)
    [file_text] = re.findall(r"`(neural: \{install: gpu\})`", message)
    overlay = tmp_path / "gpu.yaml"
    overlay.write_text(file_text + "\n")
    config = str(ROOT / "config.yaml")
    for extra in (["--configfile", config, *shlex.split(typed)], ["--configfile", config, str(overlay)]):
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
             "--directory", str(tmp_path), "--workflow-profile", "none", *extra],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"},
        )
        assert result.returncode == 0, f"{extra}:\n{result.stderr[-3000:]}"


# --- the GPU install ------------------------------------------------------------------


def make_dry_run(*args):
    """The commands `make -n venv ...` would run for a venv that is not there yet."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "-n", "venv", "VENV=/nonexistent/venv", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_venv_gpu_installs_tensorflows_cuda_build_in_place_of_the_cpu_one():
    gpu = make_dry_run("GPU=1")
    assert "pip uninstall --quiet --yes tensorflow-cpu" in gpu
    assert "sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' requirements.txt" in gpu
    assert "-r /nonexistent/venv/requirements-gpu.txt" in gpu
    assert "/nonexistent/venv/bin/.installed-gpu" in gpu
    cpu = make_dry_run()
    assert "pip uninstall --quiet --yes tensorflow\n" in cpu
    assert "-r /nonexistent/venv/requirements-cpu.txt" in cpu and "requirements-gpu" not in cpu
    assert "/nonexistent/venv/bin/.installed-cpu" in cpu


def pypi_reachable():
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


@pytest.mark.network
def test_gpu_install_resolves_on_pypi(tmp_path):
    """`make venv GPU=1`'s package list resolves as a whole (pip's resolver, metadata
    only: nothing is downloaded beyond it, nothing installed). About a minute."""
    if not pypi_reachable():
        pytest.skip("pypi.org is not reachable from here")
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    # as the Makefile: `# no-deps` lines are installed apart, without dependencies
    gpu = [re.sub(r"^tensorflow-cpu==", "tensorflow[and-cuda]==", line)
           for line in lines if "# no-deps" not in line]
    requirements = tmp_path / "requirements-gpu.txt"
    requirements.write_text("\n".join(gpu) + "\n")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", str(report), "-r", str(requirements)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = {
        item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
        for item in json.loads(report.read_text())["install"]
    }
    tensorflow = next(line for line in lines if line.startswith("tensorflow-cpu=="))
    assert resolved["tensorflow"] == tensorflow.split("==")[1]
    assert "tensorflow-cpu" not in resolved
    assert any(name.startswith("nvidia-cudnn") for name in resolved)
