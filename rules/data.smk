# Where tracks come from: generated demo audio, a download, or a feature table.


rule make_demo_audio:
    # one job per genre generates all its tracks (their number is known at parse time)
    output:
        [
            f"{DEMO_ROOT}/{{genre}}/{{genre}}.{index:05d}.wav"
            for index in range(config["dataset"]["demo"]["tracks_per_genre"])
        ],
    log:
        "results/logs/make_demo_audio/{genre}.log",
    wildcard_constraints:
        genre=r"[^/]+",
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=300,
        runtime=5,
    params:
        duration=config["dataset"]["demo"]["duration"],
        seed=config["dataset"]["demo"]["seed"],
    script:
        "../scripts/make_demo_audio.py"


checkpoint download_dataset:
    output:
        directory(DOWNLOAD_ROOT),
    log:
        "results/logs/download_dataset/download.log",
    # compute nodes often have no internet access: download on the submitting host
    localrule: True
    conda:
        "../envs/audio.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=120,
    params:
        url=config["dataset"]["download"]["url"],
        sha256=config["dataset"]["download"]["sha256"],
        archive="resources/download/genres.tar.gz",
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
        conda:
            "../envs/audio.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        script:
            "../scripts/import_table.py"
