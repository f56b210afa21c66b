# Networks (Keras): one job per model x input of config neural.models.
# NEURAL_MODELS / NEURAL_INPUTS and one_of() come from rules/common.smk.
rule train_neural:
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
        model="results/models/{model}/{input}/model.keras",
        history="results/models/{model}/{input}/history.csv",
        curves=report(
            "results/models/{model}/{input}/curves.png",
            caption="../report/curves.rst",
            category="Training curves",
            labels={"model": "{model}", "input": "{input}"},
        ),
    log:
        "results/logs/train_neural/{model}/{input}.log",
    benchmark:
        "results/benchmarks/train_neural/{model}/{input}.tsv"
    wildcard_constraints:
        model=one_of(NEURAL_MODELS),
        input=one_of(NEURAL_INPUTS),
    conda:
        "../envs/neural.yaml"
    threads: config["neural"].get("threads", 4)
    resources:
        # the SLURM profile turns this into a GPU request; locally it only counts
        gpu=1,
    params:
        # the job's architecture and training settings: editing one model reruns only it
        settings=neural_job_settings,
        split_method=config["split"]["method"],
    script:
        "../scripts/train_neural.py"
