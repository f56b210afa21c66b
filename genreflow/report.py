"""The final report: every model x input side by side, beside the study's figures.

Reads only files the earlier stages wrote (``docs/contracts.md``). A configured model x input
without outputs (switched off for the data source, or failed) is listed as missing, never dropped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from genreflow.constants import GTZAN_GENRES, SEGMENT_SUFFIX
from genreflow.evaluate import draw_confusion, pyplot

#: Columns of ``summary.csv``: the metrics of each model x input, then whether it ran.
SUMMARY_COLUMNS = ["model", "input", "mode", "accuracy", "balanced_accuracy", "macro_f1", "best_cv_score",
                   "n_train", "n_test", "fit_seconds", "device", "status", "reason"]
#: The per-job files the report reads.
MODEL_FILES = ("metrics.json", "predictions.csv", "confusion.csv")
#: Pairs the study names as most confused, in its order (same source as the figures).
STUDY_CONFUSED_PAIRS = [("hiphop", "reggae"), ("classical", "jazz"), ("disco", "rock"), ("disco", "hiphop"),
                        ("metal", "rock")]
STUDY_FIGURES = "study_figures.csv"


def read_study_figures(path=None):
    """The study's reported accuracies (``path``, default the packaged ``study_figures.csv``), one row
    per model x input it reported.

    Returns
    -------
    pandas.DataFrame
        ``model, input, study_model, study_input, accuracy, qualifier, scored_on, train_time``;
        ``attrs["source"]`` names the study (the file's ``# source:`` line).
    """
    text = (resources.files("genreflow") / "data" / STUDY_FIGURES if path is None else Path(path)).read_text()
    name = f"genreflow/data/{STUDY_FIGURES}" if path is None else str(path)
    comments = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    sources = [c.split(":", 1)[1].strip() for c in comments if c.startswith("source:")]
    if not sources:
        raise ValueError(f"{name}: no '# source: ...' line naming the study")
    rows = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    figures = pd.read_csv(io.StringIO(rows), keep_default_na=False, dtype={"train_time": str})
    figures["accuracy"] = figures["accuracy"].astype(float)
    figures.attrs["source"] = sources[0]
    return figures


@dataclass
class ModelResults:
    """What the model jobs left behind, and which configured jobs left nothing."""

    metrics: dict = field(default_factory=dict)  # (model, input) -> metrics.json
    confusions: dict = field(default_factory=dict)  # (model, input) -> DataFrame
    missing: dict = field(default_factory=dict)  # (model, input) -> reason


def collect_model_results(model_files, jobs, skipped=None):
    """Read the files of every finished model x input into a :class:`ModelResults`; name the missing ones.

    Parameters
    ----------
    model_files : iterable of path-like
        The :data:`MODEL_FILES` of each reported job, ``results/models/<model>/<input>/``.
    jobs : iterable of (str, str)
        Every configured (model, input).
    skipped : dict, optional
        ``{(model, input): reason}`` for configured jobs that cannot run.

    Raises
    ------
    ValueError
        When a job lacks a file, or its ``metrics.json`` or ``confusion.csv`` disagrees with its
        ``predictions.csv`` (a stale or partly rewritten folder).
    """
    by_job = {}
    for path in map(Path, model_files):
        by_job.setdefault((path.parent.parent.name, path.parent.name), {})[path.name] = path
    results = ModelResults()
    for job, files in by_job.items():
        absent = sorted(set(MODEL_FILES) - set(files))
        if absent:
            raise ValueError(f"report inputs of {'/'.join(job)} lack {', '.join(absent)}")
        metrics_path, predictions_path = files["metrics.json"], files["predictions.csv"]
        metrics = json.loads(metrics_path.read_text())
        predictions = pd.read_csv(predictions_path)
        confusion = pd.read_csv(files["confusion.csv"], index_col=0)
        recomputed = float((predictions["true"] == predictions["predicted"]).mean())
        if not math.isclose(recomputed, float(metrics["accuracy"]), abs_tol=1e-9):
            raise ValueError(f"{metrics_path}: accuracy {metrics['accuracy']} disagrees with "
                             f"{predictions_path} ({recomputed}); they hold outputs of different runs: "
                             f"rerun the job (snakemake --forcerun {metrics_path})")
        if int(confusion.to_numpy().sum()) != len(predictions):
            raise ValueError(f"{files['confusion.csv']}: {int(confusion.to_numpy().sum())} tracks, "
                             f"but {predictions_path} has {len(predictions)}; rerun the job")
        results.metrics[job], results.confusions[job] = metrics, confusion
    skipped = skipped or {}
    for job in dict.fromkeys([*map(tuple, jobs), *skipped]):
        if job in skipped:
            results.missing[job] = f"skipped: {skipped[job]}"
        elif job not in by_job:
            results.missing[job] = ("no outputs: the job failed or has not run "
                                    f"(its log: results/logs/train_*/{job[0]}/{job[1]}.log)")
    return results


def summary_table(results):
    """One row per configured model x input: finished ones by accuracy, then balanced accuracy,
    descending; then the missing ones (``status == "missing"``) with the reason."""
    def mode(input_name):
        return "segments" if input_name.endswith(SEGMENT_SUFFIX) else "track"

    numbers = SUMMARY_COLUMNS[3:10]  # accuracy .. fit_seconds
    done = pd.DataFrame([{"model": m, "input": i, "mode": metrics.get("mode", mode(i)), "status": "ok", "reason": "",
                          "device": metrics.get("device", ""),
                          **{c: np.nan if metrics.get(c) is None else metrics[c] for c in numbers}}
                         for (m, i), metrics in results.metrics.items()], columns=SUMMARY_COLUMNS)
    done = done.sort_values(["accuracy", "balanced_accuracy", "model", "input"], ascending=[False, False, True, True],
                            kind="stable")
    missing = pd.DataFrame([{"model": m, "input": i, "mode": mode(i), "status": "missing", "reason": reason}
                            for (m, i), reason in sorted(results.missing.items())], columns=SUMMARY_COLUMNS)
    parts = [frame for frame in (done, missing) if not frame.empty]
    if not parts:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SUMMARY_COLUMNS]


def paper_comparison(summary, study):
    """Our held-out accuracy beside the study's figure for each model x input it reported.

    Our segment-mode variant (``<input>_seg``) gets its own row beside the same figure.

    Returns
    -------
    pandas.DataFrame
        ``model, input, study_model, study_input, study_accuracy, qualifier, scored_on, ours_input,
        ours_accuracy, ours_status, difference`` (ours minus the study's; NaN where ours is missing).
    """
    rows = []
    by_job = summary.set_index(["model", "input"]) if not summary.empty else None
    for figure in study.itertuples(index=False):
        found = [c for c in (figure.input, figure.input + SEGMENT_SUFFIX)
                 if by_job is not None and (figure.model, c) in by_job.index]
        for ours_input in found or [figure.input]:
            row = {"model": figure.model, "input": figure.input, "study_model": figure.study_model,
                   "study_input": figure.study_input, "study_accuracy": figure.accuracy,
                   "qualifier": figure.qualifier, "scored_on": figure.scored_on, "ours_input": ours_input,
                   "ours_accuracy": np.nan, "ours_status": "not configured"}
            if found:
                ours = by_job.loc[(figure.model, ours_input)]
                row["ours_status"] = ours["status"] if ours["status"] == "ok" else ours["reason"]
                row["ours_accuracy"] = ours["accuracy"] if ours["status"] == "ok" else np.nan
            rows.append(row)
    comparison = pd.DataFrame(rows)
    comparison["difference"] = comparison["ours_accuracy"] - comparison["study_accuracy"]
    return comparison


def confused_pairs(confusions):
    """Genre pairs most often mistaken for each other, summed over ``confusions`` (as in :class:`ModelResults`).

    Returns
    -------
    pandas.DataFrame
        One row per pair confused at least once, most confused first: ``genre_a, genre_b``
        (alphabetical), ``a_as_b, b_as_a, total`` (tracks), ``share_of_errors`` (of every
        misclassified track), ``n_jobs`` (model x inputs confusing the pair).
    """
    columns = ["genre_a", "genre_b", "a_as_b", "b_as_a", "total", "share_of_errors", "n_jobs"]
    counts, jobs_with, errors = {}, {}, 0  # counts: (a, b) -> [a predicted as b, b predicted as a]
    for table in confusions.values():
        confused_here = set()
        for (true, predicted), n in table.stack().items():
            if true == predicted or n == 0:
                continue
            errors += int(n)
            key = tuple(sorted((true, predicted)))
            counts.setdefault(key, [0, 0])[0 if true == key[0] else 1] += int(n)
            confused_here.add(key)
        for key in confused_here:
            jobs_with[key] = jobs_with.get(key, 0) + 1
    rows = [{"genre_a": a, "genre_b": b, "a_as_b": ab, "b_as_a": ba, "total": ab + ba,
             "share_of_errors": (ab + ba) / errors if errors else np.nan, "n_jobs": jobs_with[(a, b)]}
            for (a, b), (ab, ba) in counts.items()]
    pairs = pd.DataFrame(rows, columns=columns)
    return pairs.sort_values(["total", "n_jobs", "genre_a", "genre_b"], ascending=[False, False, True, True],
                             ignore_index=True)


def split_counts(split):
    """Tracks per genre (rows) and part (columns ``train, valid, test`` or ``fold <k>``), with totals."""
    if split.empty:
        return pd.DataFrame()
    if set(split["part"]) == {"cv"}:
        column = "fold " + split["fold"].astype(str)
    else:
        order = {"train": 0, "valid": 1, "test": 2}
        column = pd.Categorical(split["part"], sorted(set(split["part"]), key=lambda p: (order.get(p, 9), p)))
    counts = pd.crosstab(split["label"], column, margins=True, margins_name="total")
    return counts.rename_axis(index="genre", columns=None)


def grid_shape(n_panels, max_cols=4):
    """(rows, columns) of a panel grid: at most ``max_cols`` columns, no empty row."""
    cols = max(1, min(max_cols, n_panels))
    return max(1, math.ceil(n_panels / cols)), cols


def plot_confusion_grid(confusions, path, accuracies=None, max_cols=4):
    """Save one PNG with a confusion-matrix panel per model x input, on one 0..1 colour scale.

    ``confusions`` as in :class:`ModelResults`; ``accuracies``: ``{(model, input): accuracy}`` for
    the panel titles. Returns the number of panels.
    """
    plt = pyplot()
    accuracies = accuracies or {}
    genres = sorted({g for t in confusions.values() for g in (*t.index, *t.columns)})
    n_rows, n_cols = grid_shape(len(confusions), max_cols)
    side = 0.33 * max(len(genres), 4) + 1.2
    figsize = (side * n_cols + 1.2, side * n_rows + 0.4)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=figsize, squeeze=False, layout="constrained")
    image = None
    for ax, (job, table) in zip(axes.ravel(), confusions.items()):
        title = f"{job[0]} / {job[1]}" + (f"\naccuracy {accuracies[job]:.1%}" if job in accuracies else "")
        image = draw_confusion(ax, table.reindex(index=genres, columns=genres, fill_value=0), title, fontsize=7)
    for ax in axes.ravel()[len(confusions) :]:
        ax.set_axis_off()
    if image is None:
        axes[0, 0].text(0.5, 0.5, "no model results to show", ha="center", va="center")
    else:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="share of the true genre's tracks")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(confusions)


def _text(value, spec):
    """``value`` formatted with ``spec`` (``"d"``: as a whole number); ``""`` when missing."""
    if value is None or pd.isna(value):
        return ""
    return format(int(value) if spec == "d" else value, spec)


def summary_display(summary):
    """The summary's finished rows formatted for reading (percentages, rank)."""
    done = summary[summary["status"] == "ok"]
    shown = {"rank": range(1, len(done) + 1), **{c: done[c] for c in ("model", "input", "mode")}}
    formats = [("accuracy", "accuracy", ".1%"), ("balanced acc.", "balanced_accuracy", ".1%"),
               ("macro F1", "macro_f1", ".3f"), ("best CV", "best_cv_score", ".1%"),
               ("train", "n_train", "d"), ("test", "n_test", "d"), ("fit s", "fit_seconds", ".1f")]
    for name, column, spec in formats:
        shown[name] = done[column].apply(_text, args=(spec,))
    return pd.DataFrame({**shown, "device": done["device"].fillna("")})


def markdown_table(frame):
    """A DataFrame as a GitHub Markdown table (``None.`` when empty).

    Not ``DataFrame.to_markdown``, which needs ``tabulate`` in the report's environment.
    """
    if frame.empty:
        return "None.\n"

    def row(values):
        cells = ("" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in values)
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    return "\n".join([row(frame.columns), rule, *map(row, frame.itertuples(index=False))]) + "\n"


def _split_facts(split):
    if split.empty:
        return "no tracks in the split"
    if set(split["part"]) == {"cv"}:
        return f"{len(split)} tracks, {split['fold'].nunique()}-fold cross-validation"
    parts = split["part"].value_counts()
    return ", ".join(f"{parts[p]} {p}" for p in ("train", "valid", "test") if p in parts) + " tracks"


def data_caveat(split, dataset=""):
    """A warning when the run's data is not the study's (the full GTZAN), else ``""``."""
    genres = set(split["label"]) if not split.empty else set()
    if "demo" not in dataset and genres == set(GTZAN_GENRES) and split["track"].nunique() >= 990:
        return ""
    return (f"**Not the study's data**: {dataset or 'the configured data'}, {split['track'].nunique()} "
            "tracks, where the study used the full GTZAN (1000 tracks, 10 genres). The differences "
            "below compare different data: they say nothing about beating the study.")


def provenance_line(results):
    """The commit(s) and data hash(es) the reported models came from, in one line."""
    commits, data = set(), set()
    for metrics in results.metrics.values():
        provenance = metrics.get("provenance") or {}
        git, inputs = provenance.get("git") or {}, provenance.get("inputs") or {}
        if git:
            commits.add(git["commit"][:12] + (" (uncommitted changes)" if git.get("dirty") else ""))
        if "split" in inputs:
            data.add(inputs["split"]["sha256"][:12])
    if not commits and not data:
        return ""
    return (f"Code: genreflow commit {', '.join(sorted(commits)) or 'unknown'}; "
            f"split.csv SHA-256 {', '.join(sorted(data)) or 'unknown'}.")


def report_sections(summary, comparison, pairs, rejected, split, dataset="", source="", made_by=""):
    """Every table of the report, ``{name: (title, note, frame)}``, in reading order.

    The Markdown pages and ``summary.html`` render these same sections, so they never disagree.
    """
    caveat = data_caveat(split, dataset)
    study_note = "\n".join([
        *([caveat, ""] if caveat else []),
        f"Source of the study's figures: {source} (`genreflow/data/{STUDY_FIGURES}`).",
        "",
        "- The study's classic models were scored on a 25% stratified hold-out of the full",
        "  GTZAN (1000 tracks); ours on the held-out tracks of the configured data.",
        "- The study's networks (ANN, CNN, LSTM, simple RNN) were trained on the whole set",
        "  and **scored on training data** (`study scored on = training`): their figures",
        "  are not comparable with our held-out ones.",
        "- difference = ours minus the study's, in percentage points; `> ` where the study",
        "  gave an upper bound, `~ ` where it gave an approximate figure.",
    ])
    top = pairs.head(10)
    top_pairs = pd.DataFrame({
        "pair": top["genre_a"] + " / " + top["genre_b"], "1st as 2nd": top["a_as_b"], "2nd as 1st": top["b_as_a"],
        "tracks": top["total"], "share of errors": top["share_of_errors"].apply(_text, args=(".1%",)),
        "model x inputs": top["n_jobs"]})
    study, ours = comparison[["qualifier", "study_accuracy"]], comparison[["ours_accuracy", "ours_status"]]
    beside_study = pd.DataFrame({
        "model": comparison["model"], "input": comparison["input"],
        "study": [("" if q == "=" else f"{q} ") + _text(a, ".1%") for q, a in study.itertuples(index=False)],
        "study scored on": comparison["scored_on"], "ours (input)": comparison["ours_input"],
        "ours": [_text(a, ".1%") if status == "ok" else status for a, status in ours.itertuples(index=False)],
        # ours minus an upper bound is a lower bound on the difference, and so on
        "difference": ["" if pd.isna(d) else {"<": "> ", "~": "~ "}.get(q, "") + f"{d * 100:+.1f} pp"
                       for d, q in zip(comparison["difference"], comparison["qualifier"])],
    })
    ranks = {tuple(sorted(ab)): k + 1 for k, ab in enumerate(zip(pairs["genre_a"], pairs["genre_b"]))}
    study_pairs = pd.DataFrame({
        "study's pair": [f"{a} / {b}" for a, b in STUDY_CONFUSED_PAIRS],
        "our rank": [str(ranks.get(tuple(sorted(ab)), "never confused")) for ab in STUDY_CONFUSED_PAIRS],
    })
    data_note = (f"Data: {dataset or 'see config.yaml'}; split: {_split_facts(split)}.\n"
                 "Every accuracy is on held-out tracks (test part, or each track's test fold)."
                 + (f"\n{made_by}" if made_by else ""))
    missing = summary.loc[summary["status"] != "ok", ["model", "input", "reason"]]
    return {
        "summary": ("Held-out accuracy, best first", data_note, summary_display(summary)),
        "missing": ("Missing model x inputs", "", missing),
        "pairs": ("Most-confused genre pairs (summed over every model x input)", "", top_pairs),
        "comparison": ("Our accuracy beside the study's", study_note, beside_study),
        "study_pairs": ("The study's most-confused pairs among ours", "", study_pairs),
        "rejected": (f"Rejected tracks ({len(rejected)})", "", rejected[["track", "source", "reason"]]),
        "split": (f"Split: {_split_facts(split)}", "", split_counts(split).reset_index()),
    }


def markdown_page(title, sections):
    """A Markdown page: ``# title``, then each ``(title, note, frame)`` as a section."""
    lines = [f"# {title}", ""]
    for heading, note, frame in sections:
        lines += [f"## {heading}", "", *([note, ""] if note else []), markdown_table(frame)]
    return "\n".join(lines)


def _html_table(frame):
    return "<p>None.</p>" if frame.empty else frame.to_html(index=False, border=1, escape=True, na_rep="")


def html_page(sections, grid_png=None):
    """Every section as one HTML fragment for Snakemake's report, the grid embedded as a data URI
    so the fragment needs no other file."""
    parts = []
    for heading, note, frame in sections:
        text = f"<p>{html.escape(note.replace('**', '').replace('`', ''))}</p>" if note else ""
        parts.append(f"<h2>{html.escape(heading)}</h2>\n{text}{_html_table(frame)}")
    if grid_png is not None:
        encoded = base64.b64encode(Path(grid_png).read_bytes()).decode("ascii")
        parts.insert(3, "<h2>Confusion matrices</h2>\n<p>Rows true genre, columns predicted; colour = share of "
                        "the true genre's tracks, the same 0 to 1 scale in every panel.</p>"
                        '<img alt="confusion matrices of every model x input" style="max-width: 100%" '
                        f'src="data:image/png;base64,{encoded}">')
    return '<div class="genreflow-summary">\n' + "\n".join(parts) + "\n</div>\n"


def front_page_html(summary, n_best=5):
    """The best model x inputs as a short HTML table for the report's front page (Snakemake's
    report centres its front page vertically, so a tall page loses its top)."""
    shown = summary_display(summary).head(n_best)[["rank", "model", "input", "accuracy", "balanced acc.", "macro F1"]]
    n_done = int((summary["status"] == "ok").sum())
    note = f"Best {len(shown)} of {n_done} model x inputs, held-out accuracy"
    if len(summary) > n_done:
        note += f"; {len(summary) - n_done} missing (see summary.html)"
    return f"<p><strong>{html.escape(note)}</strong></p>\n{_html_table(shown)}\n"


def write_report(results, rejected, split, outputs, study=None, dataset=""):
    """Write every report file; return the summary table.

    Parameters
    ----------
    rejected, split : pandas.DataFrame
        ``rejected.csv`` and ``split.csv`` of the data stage.
    outputs : mapping
        Paths by name: ``summary_csv, summary_md, summary_html, comparison_md, comparison_csv,
        confusion_grid, pairs_csv, data_md, front_html``.
    study : pandas.DataFrame, optional
        Default: :func:`read_study_figures`.
    dataset : str
        What data the run used, for the reader.
    """
    study = read_study_figures() if study is None else study
    summary = summary_table(results)
    comparison = paper_comparison(summary, study)
    pairs = confused_pairs(results.confusions)
    for path in outputs.values():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    sections = report_sections(summary, comparison, pairs, rejected, split, dataset,
                               study.attrs.get("source", ""), provenance_line(results))
    pages = {"summary_md": ("Genre classification: summary", ["summary", "missing", "pairs"]),
             "comparison_md": ("Our accuracy beside the study's", ["comparison", "study_pairs"]),
             "data_md": ("Data", ["rejected", "split"])}
    for name, (title, keys) in pages.items():
        Path(outputs[name]).write_text(markdown_page(title, [sections[k] for k in keys]))
    summary.to_csv(outputs["summary_csv"], index=False)
    comparison.to_csv(outputs["comparison_csv"], index=False)
    pairs.to_csv(outputs["pairs_csv"], index=False)
    Path(outputs["front_html"]).write_text(front_page_html(summary))
    ok_jobs = summary.loc[summary["status"] == "ok", ["model", "input"]].itertuples(index=False, name=None)
    ordered = {job: results.confusions[job] for job in ok_jobs}  # panels in the summary's order: best first
    accuracies = {job: m["accuracy"] for job, m in results.metrics.items()}
    plot_confusion_grid(ordered, outputs["confusion_grid"], accuracies)
    Path(outputs["summary_html"]).write_text(html_page(sections.values(), outputs["confusion_grid"]))
    return summary
