# genreflow: folder of tracks -> features (HDF5) -> split -> classifiers -> report.
# Wiring only: logic lives in the genreflow package, called from scripts/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/features.smk"
include: "rules/split.smk"
include: "rules/classic.smk"
include: "rules/neural.smk"
include: "rules/report.smk"
include: "rules/predict.smk"


rule all:
    default_target: True
    input:
        all_targets(),
