# The final report: every configured model x input side by side, the study's figures
# beside ours, confusion matrices, data facts; and the pages of `snakemake --report`.
import os

REPORT = "results/report"
MODEL_REPORT_FILES = ["metrics.json", "predictions.csv", "confusion.csv"]


report: "../report/workflow.rst"


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


rule report:
    input:
        models=report_model_files,
        rejected="results/features/rejected.csv",
        split="results/splits/split.csv",
    output:
        summary_csv=report(
            f"{REPORT}/summary.csv",
            caption="../report/summary.rst",
            category="Accuracy",
            labels={"table": "summary (CSV)"},
        ),
        summary_md=f"{REPORT}/summary.md",
        summary_html=report(
            f"{REPORT}/summary.html",
            caption="../report/summary.rst",
            category="Accuracy",
            labels={"table": "summary, study comparison, data"},
        ),
        comparison_md=f"{REPORT}/paper_comparison.md",
        comparison_csv=report(
            f"{REPORT}/paper_comparison.csv",
            caption="../report/paper_comparison.rst",
            category="Accuracy",
            labels={"table": "beside the study (CSV)"},
        ),
        confusion_grid=report(
            f"{REPORT}/confusion_matrices.png",
            caption="../report/confusion_matrices.rst",
            category="Confusion matrices",
            subcategory="All model x inputs",
            labels={"figure": "grid"},
        ),
        pairs_csv=report(
            f"{REPORT}/confused_pairs.csv",
            caption="../report/confused_pairs.rst",
            category="Confusion matrices",
            subcategory="All model x inputs",
            labels={"figure": "most-confused pairs (CSV)"},
        ),
        data_md=f"{REPORT}/data.md",
        front_html=f"{REPORT}/front_page.html",
    log:
        "results/logs/report/report.log",
    localrule: True
    conda:
        "../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        jobs=[f"{m}/{i}" for m, i in MODEL_JOBS],
        skipped={f"{m}/{i}": why for (m, i), why in SKIPPED_JOBS.items()},
        models_root="results/models",
        logs_root="results/logs",
        dataset=dataset_description(),
    script:
        "../scripts/report.py"
