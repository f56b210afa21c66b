"""Run the genreflow Snakefile in a scratch folder (shared by the end-to-end tests)."""

import os
import subprocess
import sys

import yaml
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "config" / "tiny.yaml"


def snakemake_command(workdir, *args, configfiles=(TINY,), config=()):
    """The command line running the repo's Snakefile with ``workdir`` as working folder."""
    # targets first: --configfile and --config take several values and would eat them;
    # options with several values in ``args`` must use the --option=value form
    command = [
        sys.executable, "-m", "snakemake", *map(str, args),
        "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(ROOT / "config.yaml"), *map(str, configfiles),
    ]
    if config:
        command += ["--config", *config]
    return command


def overlay(folder, settings, name="overlay.yaml"):
    """Write a config overlay (given after config.yaml and tiny.yaml) and return its path.

    Nested settings go through a file: ``--config key={...}`` turns nested numbers into
    strings.
    """
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(settings))
    return path


def run_snakemake(workdir, *args, check=True, configfiles=(TINY,), config=(), timeout=1200):
    """Run snakemake; return the CompletedProcess (stdout and stderr merged)."""
    result = subprocess.run(
        snakemake_command(workdir, *args, configfiles=configfiles, config=config),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-6000:]}")
    return result


def planned_jobs(workdir, *args, **kwargs):
    """``{rule: count}`` of the jobs a dry run would run."""
    out = run_snakemake(workdir, *args, "-n", "--quiet=rules", **kwargs).stdout
    counts = {}
    in_table = False
    for line in out.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] != "total":
                counts[parts[0]] = int(parts[1])
        elif in_table and parts and not set(line.strip()) <= {"-", " "}:
            in_table = False
    return counts
