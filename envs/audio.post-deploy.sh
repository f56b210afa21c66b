#!/usr/bin/env bash
# Run by Snakemake after it creates the audio env (--software-deployment-method conda).
# musicnn ships the weights genreflow.embeddings loads; its metadata asks for numpy<1.17
# and a full tensorflow, so it is installed without dependencies, at requirements.txt's pin.
set -euo pipefail
python -m pip install --no-deps musicnn==0.1.0
