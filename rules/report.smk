# The final report: every configured model x input side by side, the study's figures
# beside ours, confusion matrices, data facts; and the pages of `snakemake --report`.
report: "../report/workflow.rst"


rule report:
    input:
        models=report_model_files,
        rejected="results/features/rejected.csv",
        split="results/splits/split.csv",
    output:
        summary_csv=report(
            f"results/report/summary.csv",
            caption="../report/summary.rst",
            category="Accuracy",
            labels={"table": "summary (CSV)"},
        ),
        summary_md=f"results/report/summary.md",
        summary_html=report(
            f"results/report/summary.html",
            caption="../report/summary.rst",
            category="Accuracy",
            labels={"table": "summary, study comparison, data"},
        ),
        comparison_md=f"results/report/paper_comparison.md",
        comparison_csv=report(
            f"results/report/paper_comparison.csv",
            caption="../report/paper_comparison.rst",
            category="Accuracy",
            labels={"table": "beside the study (CSV)"},
        ),
        confusion_grid=report(
            f"results/report/confusion_matrices.png",
            caption="../report/confusion_matrices.rst",
            category="Confusion matrices",
            subcategory="All model x inputs",
            labels={"figure": "grid"},
        ),
        pairs_csv=report(
            f"results/report/confused_pairs.csv",
            caption="../report/confused_pairs.rst",
            category="Confusion matrices",
            subcategory="All model x inputs",
            labels={"figure": "most-confused pairs (CSV)"},
        ),
        data_md=f"results/report/data.md",
        front_html=f"results/report/front_page.html",
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
        dataset=dataset_description(),
    script:
        "../scripts/report.py"
