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
        manifest="results/models/{model}/{input}/manifest.json",
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
    priority: neural_priority
    conda:
        # neural.install: gpu -> TensorFlow's CUDA build
        "../envs/neural-gpu.yaml"
        if config["neural"]["install"] == "gpu"
        else "../envs/neural.yaml"
    threads: config["neural"]["threads"]
    resources:
        # every executor: SLURM turns it into --gpus=1; locally it only counts
        gpu=1,
        # whole-track mel CNN: ~7.5 GiB host memory training, 13 GiB predicting;
        # a retried job (profiles/slurm: retries) asks for more memory and time
        mem_mb=lambda wildcards, attempt: 16000 * attempt,
        runtime=lambda wildcards, attempt: 240 * attempt,  # minutes
    params:
        # the job's architecture and training settings: editing one model reruns only it
        settings=neural_job_settings,
        split_method=config["split"]["method"],
        # musicnn inputs: the embedding model (predict extracts the same)
        embedding=model_embedding,
        # genreflow.devices.training_device(allow_cpu): train on the CPU when a GPU
        # was given but TensorFlow cannot see it (`--config` passes "true")
        allow_cpu=str(config["neural"]["allow_cpu"]).lower() == "true",
    script:
        "../scripts/train_neural.py"
