"""Every fix an error message suggests works when typed.

A missing data path is refused naming the config key and a `--config` to set it. Snakemake
9 takes only top-level keys on the command line (`--config dataset.folder=PATH` stops
with "Config entry must start with a valid identifier"), so the message must give the
YAML form; here each suggestion is typed as printed, with PATH replaced, and the dry run
must get past the error.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SUGGESTION = re.compile(r"with (--config '[^']*')")


def dry_run(workdir, overlay, *typed):
    """``snakemake -n`` with config.yaml, ``overlay`` (a dict) and typed arguments."""
    overlay_file = workdir / "overlay.yaml"
    overlay_file.write_text(yaml.safe_dump(overlay))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
         "--directory", str(workdir), "--workflow-profile", "none",
         "--configfile", str(ROOT / "config.yaml"), str(overlay_file), *typed],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def suggestion(result, key):
    """The ``--config`` a failed run suggests for ``key``, as typed arguments."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert f"config key {key} = " in output, output[-3000:]
    [typed] = SUGGESTION.findall(output)
    return typed


@pytest.fixture
def audio_folder(tmp_path, make_wav):
    """Two genres of two short tracks: enough for the dry run to list jobs."""
    root = tmp_path / "genres"
    for genre in ("blues", "metal"):
        for index in range(2):
            make_wav(root / genre / f"{genre}.{index:05d}.wav", np.zeros(22050))
    return root


def test_the_old_dotted_form_is_what_snakemake_refuses(tmp_path):
    result = dry_run(tmp_path, {}, "--config", "dataset.folder=/data")
    assert result.returncode != 0
    assert "valid identifier" in result.stdout + result.stderr


def test_missing_dataset_folder_suggests_a_config_that_works(tmp_path, audio_folder):
    overlay = {"dataset": {"source": "folder", "folder": str(tmp_path / "nowhere")}}
    typed = suggestion(dry_run(tmp_path, overlay), "dataset.folder")
    assert typed == "--config 'dataset={folder: PATH}'"
    fixed = dry_run(tmp_path, overlay, *shlex.split(typed.replace("PATH", str(audio_folder))))
    assert fixed.returncode == 0, (fixed.stdout + fixed.stderr)[-3000:]
    # merged key by key: dataset.source stays 'folder'
    assert "extract" in fixed.stdout


def test_missing_nested_split_lists_suggest_configs_that_work(tmp_path, audio_folder):
    lists = tmp_path / "lists"
    lists.mkdir()
    overlay = {
        "dataset": {"source": "folder", "folder": str(audio_folder)},
        "split": {"method": "lists", "lists": {"train": "", "test": ""}},
    }
    typed = []
    for key in ("split.lists.train", "split.lists.test"):
        part = key.rsplit(".", 1)[1]
        suggested = suggestion(dry_run(tmp_path, overlay, *typed), key)
        assert suggested == f"--config 'split={{lists: {{{part}: PATH}}}}'"
        listing = lists / f"{part}.txt"
        listing.write_text("blues.00000.wav\n")
        typed = shlex.split(suggested.replace("PATH", str(listing)))
        # what one part's fix sets, the config file keeps for the next run
        overlay["split"]["lists"][part] = str(listing)
    fixed = dry_run(tmp_path, overlay, *typed)
    assert fixed.returncode == 0, (fixed.stdout + fixed.stderr)[-3000:]


@pytest.mark.parametrize("source", ["manifest", "table"])
def test_missing_manifest_or_table_suggests_a_config_that_works(tmp_path, source):
    existing = tmp_path / f"{source}.csv"
    existing.write_text("path,label\n")
    key = f"dataset.{source}"
    overlay = {"dataset": {"source": source, source: str(tmp_path / "nowhere.csv")}}
    typed = suggestion(dry_run(tmp_path, overlay), key)
    assert typed == f"--config 'dataset={{{source}: PATH}}'"
    fixed = dry_run(tmp_path, overlay, *shlex.split(typed.replace("PATH", str(existing))))
    # past the path check (what the file holds is checked later)
    assert f"config key {key} = " not in fixed.stdout + fixed.stderr
