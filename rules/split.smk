# Track-level split: stratified hold-out (default), k-fold, or published lists.


rule make_split:
    input:
        table=f"{FEATURES}/features.csv",
    output:
        split="results/splits/split.csv",
        summary="results/splits/summary.csv",
        unmatched="results/splits/unmatched.csv",
    log:
        "results/logs/make_split/split.log",
    conda:
        "../envs/classic.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        split=config["split"],
    script:
        "../scripts/make_split.py"
