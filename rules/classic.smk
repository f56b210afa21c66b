# Classic models (scikit-learn): one job per model x input of config classic.models.
# CLASSIC_MODELS / CLASSIC_INPUTS / CLASSIC_JOBS come from rules/common.smk.
rule train_classic:
    input:
        unpack(model_data),
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
        manifest="results/models/{model}/{input}/manifest.json",
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
        # musicnn inputs: the embedding model (predict extracts the same)
        embedding=model_embedding,
    script:
        "../scripts/train_classic.py"
