# Targets and input functions. Everything here runs at parse time, so the DAG (one job
# per shard of tracks, one per model x input) is known before any job starts.
import os
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, workflow.basedir)
# jobs (local, SLURM, conda envs) import the package from the checkout
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH", "")) if p
    )
)

from genreflow import sources
from genreflow.constants import CLASSIC_MODELS as CLASSIC_MODEL_NAMES
from genreflow.constants import (
    EMBEDDING_INPUTS,
    NO_EMBEDDING,
    SEQUENCE_INPUTS,
    TABLE_INPUTS,
    split_input,
)
from genreflow.models.architectures import network_settings

SOURCE = config["dataset"]["source"]
TRACKS_PER_JOB = config["features"]["tracks_per_job"]
# musicnn model of the extraction (features.embedding.model), or "none"
EMBEDDING = config["features"].get("embedding", {}).get("model", NO_EMBEDDING)
DEMO_ROOT = "resources/demo"
DOWNLOAD_ROOT = "resources/download/genres"
FEATURES = "results/features"


def one_of(names):
    """Wildcard constraint matching exactly one of ``names``."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


def path_config(key):
    """A configured path that must exist, with the config key named when it does not.

    ``key`` is dotted (``dataset.folder``, ``split.lists.train``). The message gives a
    fix that works as typed: ``--config`` takes a top-level key only, the rest as YAML
    (``--config 'dataset={folder: PATH}'``), merged into config.yaml key by key.
    """
    top, *inner = key.split(".")
    value = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if not value or not os.path.exists(value):
        typed = "PATH"
        for part in reversed(inner):
            typed = f"{{{part}: {typed}}}"
        raise WorkflowError(
            f"config key {key} = '{value}' does not exist; set it to an existing path "
            f"in config.yaml or with --config '{top}={typed}'"
        )
    return value


def list_tracks():
    """Track list (track, label, path) of the configured source; empty for tables."""
    if SOURCE == "demo":
        return sources.demo_tracks(
            DEMO_ROOT, config["dataset"]["demo"]["tracks_per_genre"]
        )
    if SOURCE == "folder":
        return sources.folder_tracks(
            path_config("dataset.folder"), config["dataset"]["extensions"]
        )
    if SOURCE == "manifest":
        return sources.manifest_tracks(path_config("dataset.manifest"))
    if SOURCE == "download":
        if not os.path.isdir(DOWNLOAD_ROOT):
            return None  # known once the download rule has run (a checkpoint)
        return sources.folder_tracks(DOWNLOAD_ROOT, config["dataset"]["extensions"])
    return pd.DataFrame(columns=sources.TRACK_COLUMNS)


if SOURCE == "table":
    path_config("dataset.table")
if config["split"]["method"] == "lists":
    for part in ("train", "test"):
        path_config(f"split.lists.{part}")

TRACKS = list_tracks()


def tracks_table(wildcards=None):
    """Track list, waiting for the download checkpoint where the source needs it."""
    if SOURCE == "download":
        checkpoints.download_dataset.get()
        return sources.folder_tracks(DOWNLOAD_ROOT, config["dataset"]["extensions"])
    return TRACKS


_SHARDS = {}


def shards():
    """``{shard: (tracks, paths)}`` of the track list, built once (every extraction
    job's input function reads it)."""
    if not _SHARDS:
        table = sources.assign_shards(tracks_table(), TRACKS_PER_JOB)
        for shard, rows in table.groupby("shard", sort=True):
            _SHARDS[shard] = (rows["track"].tolist(), rows["path"].tolist())
    return _SHARDS


def shard_of(wildcards):
    """The (tracks, paths) of the shard ``wildcards.shard``."""
    key = wildcards.shard
    if key not in shards():
        raise WorkflowError(
            f"unknown shard '{key}': not a shard of the configured dataset "
            f"with features.tracks_per_job = {TRACKS_PER_JOB}"
        )
    return shards()[key]


def shard_audio(wildcards):
    """Audio files of one shard: the extraction job's input."""
    return shard_of(wildcards)[1]


def shard_tracks(wildcards):
    """Track ids of one shard, in the order of its input (a param: membership changes
    rerun the shard)."""
    return shard_of(wildcards)[0]


def shard_files(wildcards=None):
    """Every shard file: the merge's input."""
    return [f"{FEATURES}/shards/{shard}.h5" for shard in shards()]


def model_jobs(section):
    """(model, input) pairs configured in ``classic.models`` or ``neural.models``."""
    return [
        (model, name)
        for model, inputs in config[section].get("models", {}).items()
        for name in inputs
    ]


def needs_audio(input_name):
    base, segments = split_input(input_name)
    return segments or base in SEQUENCE_INPUTS or base in EMBEDDING_INPUTS


def skip_reason(input_name):
    """Why the configured data cannot feed an input ("" when it can)."""
    if SOURCE == "table" and needs_audio(input_name):
        return "needs audio frames; dataset.source is 'table'"
    if split_input(input_name)[0] in EMBEDDING_INPUTS and EMBEDDING == NO_EMBEDDING:
        return "needs musicnn embeddings; features.embedding.model is 'none'"
    return ""


def runnable(jobs):
    """Jobs that the data can feed (a feature table has no frames, sequences or
    embeddings; embeddings need features.embedding.model), and the rest with why."""
    kept = [(m, i) for m, i in jobs if not skip_reason(i)]
    skipped = {(m, i): skip_reason(i) for m, i in jobs if skip_reason(i)}
    return kept, skipped


def check_network_names():
    """Both families write results/models/<model>/<input>/: a network may not take a
    classic model's name."""
    for model in config["neural"].get("models", {}):
        if model in CLASSIC_MODEL_NAMES or model in config["classic"].get("models", {}):
            raise WorkflowError(
                f"config neural.models.{model}: '{model}' is a classic model's name, and both "
                f"would write results/models/{model}/; rename the network (in neural.models "
                f"and neural.architectures), e.g. to 'net_{model}'"
            )


check_network_names()
CLASSIC_JOBS, _classic_skipped = runnable(model_jobs("classic"))
NEURAL_JOBS, _neural_skipped = runnable(model_jobs("neural"))
MODEL_JOBS = CLASSIC_JOBS + NEURAL_JOBS
SKIPPED_JOBS = {**_classic_skipped, **_neural_skipped}
CLASSIC_MODELS = sorted({m for m, _ in CLASSIC_JOBS})
CLASSIC_INPUTS = sorted({i for _, i in CLASSIC_JOBS})
NEURAL_MODELS = sorted({m for m, _ in NEURAL_JOBS})
NEURAL_INPUTS = sorted({i for _, i in NEURAL_JOBS})


def model_outputs(name):
    """One file of every runnable model job, e.g. ``metrics.json``."""
    return [f"results/models/{m}/{i}/{name}" for m, i in MODEL_JOBS]


def all_targets():
    # model outputs are named too: a model whose files were removed (a killed job) is
    # then redone by a plain `snakemake`, even though the report is newer
    return [
        f"{FEATURES}/features.csv",
        "results/splits/split.csv",
        *model_outputs("metrics.json"),
        "results/report/summary.md",
        *([f"results/predictions/{PREDICTION}.csv"] if PREDICTION else []),
    ]


# config `predict`: a trained model folder and the audio it classifies
PREDICT = config.get("predict") or {}
PREDICT_MODEL = str(PREDICT.get("model") or "").rstrip("/")
# results/models/svm/all_stats -> svm_all_stats
PREDICTION = "_".join(Path(PREDICT_MODEL).parts[-2:]) if PREDICT_MODEL else ""
_PREDICT_SHARDS = {}


def predict_shards():
    """``{shard: [audio files]}`` of config predict.audio (a folder, a list file, or a
    YAML list), sharded as the extraction with features.tracks_per_job."""
    if not _PREDICT_SHARDS:
        audio = PREDICT.get("audio") or []
        entries = audio if isinstance(audio, list) else [audio]
        paths = [str(p) for p in sources.audio_files(entries)]
        if not paths:
            raise WorkflowError(
                f"config predict.audio = {audio!r} names no audio file; set it to a folder, "
                "a file listing audio paths, or a list of paths"
            )
        table = pd.DataFrame({"track": paths, "label": "audio", "path": paths})
        for shard, rows in sources.assign_shards(table, TRACKS_PER_JOB).groupby(
            "shard"
        ):
            _PREDICT_SHARDS[shard] = rows["path"].tolist()
    return _PREDICT_SHARDS


def predict_shard_files(wildcards):
    return predict_shards()[wildcards.shard]


def predict_inputs(wildcards):
    """A predict shard's inputs: the model folder's manifest and model file, its audio."""
    model = Path(PREDICT_MODEL).parts[-2]
    family_file = "model.joblib" if model in CLASSIC_MODEL_NAMES else "model.keras"
    return {
        "manifest": f"{PREDICT_MODEL}/manifest.json",
        "model": f"{PREDICT_MODEL}/{family_file}",
        "audio": predict_shard_files(wildcards),
    }


def model_data(wildcards):
    """A model job's inputs: the split, plus features.csv for whole-track tables or
    dataset.h5 for sequences and segments."""
    base, segments = split_input(wildcards.input)
    if base in TABLE_INPUTS and not segments:
        return {
            "split": "results/splits/split.csv",
            "table": f"{FEATURES}/features.csv",
        }
    return {"split": "results/splits/split.csv", "dataset": f"{FEATURES}/dataset.h5"}


def model_embedding(wildcards):
    """The musicnn model of an embedding input's extraction (None for other inputs),
    in the model folder's manifest: `genreflow predict` extracts with the same."""
    return EMBEDDING if split_input(wildcards.input)[0] in EMBEDDING_INPUTS else None


def neural_job_settings(wildcards):
    """Architecture and training settings of one network job: editing one model's
    settings reruns only its jobs (params are a rerun trigger)."""
    return network_settings(
        config["neural"], wildcards.model, wildcards.input, config["segments"]
    )


def neural_priority(wildcards):
    """Networks on sequences (MFCC, mel: whole tracks or windows) are the long jobs: they
    start first, so that short jobs (classic models, networks on vectors) fill the cores
    at the end of a run instead of one long network training alone."""
    return 1 if split_input(wildcards.input)[0] in SEQUENCE_INPUTS else 0


MODEL_REPORT_FILES = ["metrics.json", "predictions.csv", "confusion.csv"]


def allow_missing():
    """report.allow_missing; `--config report='{allow_missing: true}'` gives a string."""
    value = config.get("report", {}).get("allow_missing", False)
    return str(value).lower() == "true"


def report_model_files(wildcards):
    """The files of every configured model x input (by default, all must exist).

    With report.allow_missing, only the model x inputs whose files all exist when the
    run starts: the rest are reported as missing (e.g. after `--keep-going` when a job
    failed) and are not run by this invocation.
    """
    jobs = MODEL_JOBS
    if allow_missing():
        jobs = [
            (m, i)
            for m, i in MODEL_JOBS
            if all(
                os.path.exists(f"results/models/{m}/{i}/{name}")
                for name in MODEL_REPORT_FILES
            )
        ]
    return [
        f"results/models/{m}/{i}/{name}" for m, i in jobs for name in MODEL_REPORT_FILES
    ]


def dataset_description():
    """What data the run used, in the reader's words."""
    dataset = config["dataset"]
    source = dataset["source"]
    if source == "demo":
        demo = dataset.get("demo", {})
        return (
            f"generated demo audio ({demo.get('tracks_per_genre')} tracks per genre, "
            f"seed {demo.get('seed')})"
        )
    if source == "download":
        return f"download of {dataset['download']['url']}"
    return f"{source} {dataset.get(source, '')}"


def classic_grid(wildcards):
    """The grid setting of this model (the preset's name, or the config's own grid):
    editing one model's grid reruns only its jobs. The job resolves and checks it;
    resolving here would import scikit-learn into every parse of the Snakefile."""
    classic = config["classic"]
    return {
        "preset": classic["grid"],
        "override": classic.get("grids", {}).get(wildcards.model),
    }


def classic_segments(wildcards):
    """Window settings, for _seg inputs only (they do not rerun whole-track jobs)."""
    return dict(config["segments"]) if split_input(wildcards.input)[1] else None


def classic_mem_mb(wildcards, attempt):
    # segment mode holds ~10 windows per track
    return attempt * (3000 if split_input(wildcards.input)[1] else 1500)


def classic_runtime(wildcards, attempt):
    # minutes; the paper grids take long (GBoost: 100 fits of 300 stages per fold)
    return attempt * (240 if config["classic"]["grid"] == "paper" else 30)
