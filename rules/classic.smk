# Classic models (scikit-learn): one job per model x input of config classic.models.
# CLASSIC_MODELS / CLASSIC_INPUTS / CLASSIC_JOBS come from rules/common.smk.
from genreflow.dataset import split_input
from genreflow.models.classic import resolve_grid


def classic_data(wildcards):
    """split.csv plus the features: features.csv, or dataset.h5 for _seg inputs."""
    if split_input(wildcards.input)[1]:
        return {
            "split": "results/splits/split.csv",
            "dataset": f"{FEATURES}/dataset.h5",
        }
    return {"split": "results/splits/split.csv", "table": f"{FEATURES}/features.csv"}


def classic_grid(wildcards):
    """The grid this model searches: editing one model's grid reruns only its jobs."""
    classic = config["classic"]
    return resolve_grid(
        wildcards.model, classic["grid"], classic.get("grids", {}).get(wildcards.model)
    )


def classic_segments(wildcards):
    """Window settings, for _seg inputs only (they do not rerun whole-track jobs)."""
    return dict(config["segments"]) if split_input(wildcards.input)[1] else None


def classic_mem_mb(wildcards, attempt):
    # segment mode holds ~10 windows per track
    return attempt * (3000 if split_input(wildcards.input)[1] else 1500)


def classic_runtime(wildcards, attempt):
    # minutes; the paper grids take long (GBoost: 100 fits of 300 stages per fold)
    return attempt * (240 if config["classic"]["grid"] == "paper" else 30)


rule train_classic:
    input:
        unpack(classic_data),
    output:
        metrics="results/models/{model}/{input}/metrics.json",
        predictions="results/models/{model}/{input}/predictions.csv",
        confusion="results/models/{model}/{input}/confusion.csv",
        confusion_png=report(
            "results/models/{model}/{input}/confusion.png",
            caption="../report/confusion.rst",
            category="Confusion matrices",
            subcategory="Per model x input",
            labels={"model": "{model}", "input": "{input}"},
        ),
        model="results/models/{model}/{input}/model.joblib",
    log:
        "results/logs/train_classic/{model}/{input}.log",
    benchmark:
        "results/benchmarks/train_classic/{model}/{input}.tsv"
    wildcard_constraints:
        model=one_of(CLASSIC_MODELS),
        input=one_of(CLASSIC_INPUTS),
    conda:
        "../envs/classic.yaml"
    threads: config["classic"].get("threads", 2)
    resources:
        mem_mb=classic_mem_mb,
        runtime=classic_runtime,
    params:
        grid=classic_grid,
        cv_folds=config["classic"]["cv_folds"],
        seed=config["classic"]["seed"],
        segments=classic_segments,
        split_method=config["split"]["method"],
    script:
        "../scripts/train_classic.py"
