"""The conda environments and requirements.lock pin the same versions as requirements.txt."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            out[name.strip().lower()] = version.strip()
    return out


REQUIREMENTS = pins((ROOT / "requirements.txt").read_text().splitlines())
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))


# GPU installs: TensorFlow's CUDA build, at the version requirements.txt pins for
# tensorflow-cpu (envs/neural-gpu.yaml; `make venv GPU=1` derives its list the same way)
GPU_TENSORFLOW = "tensorflow[and-cuda]"
CPU_TENSORFLOW = "tensorflow-cpu"


def requirement_of(name):
    """The requirements.txt entry a pinned package name stands for."""
    return CPU_TENSORFLOW if name == GPU_TENSORFLOW else name


def env_pins(env_file):
    env = yaml.safe_load(env_file.read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return pins(pip_section), pip_section


def normalised(name):
    """A package name as pip compares them (PEP 503): tensorflow_cpu == tensorflow-cpu."""
    return re.sub(r"[-_.]+", "-", name)


def test_lock_pins_each_requirement_at_its_version():
    """`make venv` installs with requirements.lock as constraints: a requirement the lock
    pins at another version (or lacks) means the lock is stale (`make lock` rewrites it)."""
    lock = {normalised(name): version
            for name, version in pins((ROOT / "requirements.lock").read_text().splitlines()).items()}
    assert len(lock) > len(REQUIREMENTS)  # the dependencies too, not only what genreflow asks for
    for name, version in REQUIREMENTS.items():
        assert lock.get(normalised(name)) == version, (
            f"requirements.txt pins {name}=={version}, requirements.lock has {lock.get(normalised(name))}: "
            "run `make lock` and commit requirements.lock"
        )
    assert "genreflow" not in lock


def test_there_are_env_files_for_each_rule_family():
    assert {p.stem for p in ENV_FILES} >= {"audio", "classic", "neural", "neural-gpu", "report"}


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_requirements(env_file):
    pinned, pip_section = env_pins(env_file)
    assert pinned, f"{env_file.name} pins nothing"
    unpinned = [p for p in pip_section if "==" not in p]
    assert not unpinned, f"{env_file.name}: unpinned {unpinned}"
    for name, version in pinned.items():
        required = REQUIREMENTS.get(requirement_of(name))
        assert required == version, (
            f"{env_file.name} pins {name}=={version}, requirements.txt has {required}"
        )


def test_gpu_env_is_the_cpu_env_with_tensorflows_cuda_build():
    cpu, _ = env_pins(ROOT / "envs" / "neural.yaml")
    gpu, _ = env_pins(ROOT / "envs" / "neural-gpu.yaml")
    assert GPU_TENSORFLOW not in cpu and CPU_TENSORFLOW not in gpu
    assert gpu.pop(GPU_TENSORFLOW) == cpu.pop(CPU_TENSORFLOW)
    assert gpu == cpu


def test_make_venv_gpu_swaps_only_tensorflow():
    """`make venv GPU=1` installs requirements.txt with tensorflow-cpu==V replaced by
    tensorflow[and-cuda]==V (a sed in the Makefile): the line it rewrites must exist."""
    makefile = (ROOT / "Makefile").read_text()
    assert "sed 's/^tensorflow-cpu==/tensorflow[and-cuda]==/' requirements.txt" in makefile
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert sum(line.startswith(f"{CPU_TENSORFLOW}==") for line in lines) == 1
    gpu_lines = [line.replace(f"{CPU_TENSORFLOW}==", f"{GPU_TENSORFLOW}==") for line in lines]
    gpu = pins(gpu_lines)
    assert gpu[GPU_TENSORFLOW] == REQUIREMENTS[CPU_TENSORFLOW]
    assert CPU_TENSORFLOW not in gpu


def test_every_rule_names_a_conda_env_that_exists():
    rule_files = sorted((ROOT / "rules").glob("*.smk"))
    text = "\n".join(p.read_text() for p in rule_files)
    named = set(re.findall(r"envs/([\w.-]+\.yaml)", text))
    assert named, "no rule names a conda env"
    assert named <= {p.name for p in ENV_FILES}
    # neural.install picks the network env
    assert {"neural.yaml", "neural-gpu.yaml"} <= named
    for path in rule_files:
        content = path.read_text()
        assert content.count("script:") <= content.count("conda:"), f"{path.name}: a script rule without conda:"
