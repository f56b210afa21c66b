# Per-track feature extraction (fan-out), then one streaming merge into HDF5.


rule extract_features:
    input:
        audio=audio_of,
    output:
        h5=f"{FEATURES}/tracks/{{track}}.h5",
    log:
        "results/logs/extract_features/{track}.log",
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=600,
        runtime=10,
    params:
        track=lambda wildcards: wildcards.track,
        label=label_of,
        min_duration=config["features"]["min_duration"],
        strict=config["features"]["strict"],
    script:
        "../scripts/extract.py"


if SOURCE != "table":

    rule merge_features:
        input:
            track_feature_files,
        output:
            dataset=f"{FEATURES}/dataset.h5",
            table=f"{FEATURES}/features.csv",
            rejected=f"{FEATURES}/rejected.csv",
        log:
            "results/logs/merge_features/merge.log",
        benchmark:
            "results/benchmarks/merge_features/merge.tsv"
        conda:
            "../envs/audio.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=60,
        script:
            "../scripts/merge_features.py"
