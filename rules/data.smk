# Where tracks come from: generated demo audio, a download, or a feature table.


rule make_demo_track:
    output:
        f"{DEMO_ROOT}/{{genre}}/{{genre}}.{{index}}.wav",
    params:
        duration=config["dataset"]["demo"]["duration"],
        seed=config["dataset"]["demo"]["seed"],
    wildcard_constraints:
        index=r"\d{5}",
    log:
        "results/logs/make_demo_track/{genre}.{index}.log",
    threads: 1
    resources:
        mem_mb=300,
        runtime=5,
    conda:
        "../envs/audio.yaml"
    script:
        "../scripts/make_demo_track.py"


checkpoint download_dataset:
    output:
        directory(DOWNLOAD_ROOT),
    params:
        url=config["dataset"]["download"]["url"],
        sha256=config["dataset"]["download"]["sha256"],
        archive="resources/download/genres.tar.gz",
    log:
        "results/logs/download_dataset/download.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=120,
    conda:
        "../envs/audio.yaml"
    script:
        "../scripts/download_dataset.py"


if SOURCE == "table":

    rule import_table:
        input:
            config["dataset"]["table"],
        output:
            table=f"{FEATURES}/features.csv",
            rejected=f"{FEATURES}/rejected.csv",
        log:
            "results/logs/import_table/import.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../envs/audio.yaml"
        script:
            "../scripts/import_table.py"
