"""The conda environments pin the same versions as requirements.txt."""

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


def test_there_are_env_files_for_each_rule_family():
    assert {p.stem for p in ENV_FILES} >= {"audio", "classic", "neural", "report"}


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_pins_match_requirements(env_file):
    env = yaml.safe_load(env_file.read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    env_pins = pins(pip_section)
    assert env_pins, f"{env_file.name} pins nothing"
    unpinned = [p for p in pip_section if "==" not in p]
    assert not unpinned, f"{env_file.name}: unpinned {unpinned}"
    for name, version in env_pins.items():
        assert REQUIREMENTS.get(name) == version, (
            f"{env_file.name} pins {name}=={version}, requirements.txt has {REQUIREMENTS.get(name)}"
        )


def test_every_rule_names_a_conda_env_that_exists():
    rule_files = sorted((ROOT / "rules").glob("*.smk"))
    text = "\n".join(p.read_text() for p in rule_files)
    named = {line.strip().strip('"').split("/")[-1] for line in text.splitlines() if "envs/" in line}
    assert named, "no rule names a conda env"
    assert named <= {p.name for p in ENV_FILES}
    for path in rule_files:
        content = path.read_text()
        assert content.count("script:") <= content.count("conda:"), f"{path.name}: a script rule without conda:"
