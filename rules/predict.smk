# Classify new audio with a trained model (config `predict`): shards of files, as the
# extraction, then one table. PREDICTION / PREDICT_* come from rules/common.smk.


if PREDICTION:

    rule predict_shard:
        input:
            unpack(predict_inputs),
        output:
            temp(f"results/predictions/{PREDICTION}/{{shard}}.csv"),
        log:
            f"results/logs/predict_shard/{PREDICTION}/{{shard}}.log",
        conda:
            "../envs/predict.yaml"
        threads: 1
        resources:
            mem_mb=lambda wildcards, attempt: 4000 * attempt,
            runtime=lambda wildcards, attempt: 60 * attempt,
        params:
            files=predict_shard_files,
            min_duration=config["features"]["min_duration"],
        script:
            "../scripts/predict.py"

    rule collect_predictions:
        input:
            lambda wildcards: expand(
                f"results/predictions/{PREDICTION}/{{shard}}.csv",
                shard=sorted(predict_shards()),
            ),
        output:
            f"results/predictions/{PREDICTION}.csv",
        log:
            f"results/logs/collect_predictions/{PREDICTION}.log",
        localrule: True
        conda:
            "../envs/predict.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        script:
            "../scripts/collect_predictions.py"
