# Networks (Keras): one job per model x input of config neural.models.
# NETWORK_MODELS / NETWORK_INPUTS and one_of() come from rules/common.smk.
from genreflow.dataset import TABLE_INPUTS, split_input
from genreflow.models.architectures import network_settings


def network_data(wildcards):
    """split.csv plus what the input reads: features.csv for whole-track tables, else dataset.h5."""
    base, segments = split_input(wildcards.input)
    if base in TABLE_INPUTS and not segments:
        return {
            "split": "results/splits/split.csv",
            "table": "results/features/features.csv",
        }
    return {
        "split": "results/splits/split.csv",
        "dataset": "results/features/dataset.h5",
    }


rule train_network:
    input:
        unpack(network_data),
    output:
        metrics="results/models/{model}/{input}/metrics.json",
        predictions="results/models/{model}/{input}/predictions.csv",
        confusion="results/models/{model}/{input}/confusion.csv",
        confusion_png="results/models/{model}/{input}/confusion.png",
        model="results/models/{model}/{input}/model.keras",
        history="results/models/{model}/{input}/history.csv",
        curves="results/models/{model}/{input}/curves.png",
    log:
        "results/logs/train_network/{model}/{input}.log",
    benchmark:
        "results/benchmarks/train_network/{model}/{input}.tsv"
    wildcard_constraints:
        model=one_of(NETWORK_MODELS),
        input=one_of(NETWORK_INPUTS),
    conda:
        "../envs/neural.yaml"
    threads: config["neural"].get("threads", 4)
    resources:
        # the SLURM profile turns this into a GPU request; locally it only counts
        gpu=1,
    params:
        # the job's architecture and training settings: editing one model reruns only it
        settings=lambda wildcards: network_settings(
            config["neural"], wildcards.model, wildcards.input, config["segments"]
        ),
        split_method=config["split"]["method"],
    script:
        "../scripts/train_network.py"
