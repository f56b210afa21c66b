"""The ``genreflow`` command: ``genreflow predict`` classifies audio with a trained model."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys


def main(argv=None):
    """Entry point of ``genreflow`` and ``python -m genreflow``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="genreflow", description=__doc__.split(":", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("predict", help="classify audio files or folders with a model the workflow trained")
    sub.add_argument("audio", nargs="+", help="audio files or folders (wav, au, flac, ogg, mp3)")
    sub.add_argument("--model", required=True, help="a model folder, results/models/<model>/<input>")
    sub.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sub.add_argument("--timeline", action="store_true", help="genre per window (or 30-s excerpt) over time")
    sub.add_argument("--trust", action="store_true", help="load a model folder whose files differ from its manifest")
    sub.add_argument("--min-duration", type=float, default=5.0, help="shortest usable audio, seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from genreflow import predict
    from genreflow.provenance import UntrustedModelError
    from genreflow.sources import audio_files

    try:
        trained = predict.load_trained(args.model, trust=args.trust)
    except (UntrustedModelError, FileNotFoundError) as error:
        print(f"genreflow predict: {error}", file=sys.stderr)
        return 2
    paths = audio_files(args.audio)
    progress = None
    if sys.stderr.isatty() and len(paths) > 1:
        from tqdm import tqdm

        progress = functools.partial(tqdm, desc="extracting", unit="file", file=sys.stderr)
    files, timeline, errors = predict.predict_files(trained, paths, args.min_duration, progress)
    for path, reason in errors.items():
        print(f"genreflow predict: {path}: {reason}", file=sys.stderr)
    if args.timeline:
        table = timeline.round({"start": 2, "end": 2, "probability": 3})
    else:
        table = files[["file", "genre", "probability"]].round({"probability": 3})
        table["top 3"] = predict.top_genres(files, trained.classes)
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        json.dump(table.to_dict(orient="records"), sys.stdout, indent=2)
        print()
    else:
        print(table.to_string(index=False) if len(table) else "no file classified")
    return 1 if errors else 0
