#!/usr/bin/env bash
# Run by Snakemake after it creates the predict env (--software-deployment-method conda):
# predicting with a musicnn model extracts embeddings, so the env needs musicnn's weights,
# installed as in audio.post-deploy.sh (without dependencies, at requirements.txt's pin).
set -euo pipefail
python -m pip install --no-deps musicnn==0.1.0
