# Feature extraction fanned out over shards (one job extracts the tracks of one shard
# in one process), then one streaming merge into HDF5.


rule extract_features:
    input:
        shard_audio,
    output:
        f"{FEATURES}/shards/{{shard}}.h5",
    log:
        "results/logs/extract_features/{shard}.log",
    wildcard_constraints:
        shard=r"\d+-of-\d+",
    conda:
        "../envs/audio.yaml"
    threads: config["features"]["threads"]
    resources:
        # per process; musicnn (features.embedding.model) adds TensorFlow: ~1.1 GB,
        # ~10 s start-up
        mem_mb=lambda wildcards, threads: threads
        * (600 if EMBEDDING == NO_EMBEDDING else 2000),
        runtime=10 if EMBEDDING == NO_EMBEDDING else 20,
    params:
        tracks=shard_tracks,
        min_duration=config["features"]["min_duration"],
        strict=config["features"]["strict"],
        embedding=EMBEDDING,
    script:
        "../scripts/extract.py"


if SOURCE != "table":

    rule merge_features:
        input:
            shard_files,
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
