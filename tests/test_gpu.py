"""A network job given a GPU that TensorFlow cannot see stops at once (genreflow.devices).

TensorFlow here is tensorflow-cpu, so it never sees a GPU: the GPU a scheduler hands a
job is faked by the environment variables it would set.
"""

import os
import re
import shlex
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
