"""Fetch and unpack the configured archive (checkpoint download_dataset)."""

from genreflow.logs import setup_logging
from genreflow.sources import fetch_archive, unpack_archive

log = setup_logging(snakemake.log[0])
params = snakemake.params
if not params.url:
    raise ValueError("dataset.download.url is empty; set it in config.yaml (a genres.tar.gz URL or file://)")
log.info("downloading %s", params.url)
fetch_archive(params.url, params.sha256, params.archive)
log.info("checksum ok; unpacking into %s", snakemake.output[0])
unpack_archive(params.archive, snakemake.output[0])
