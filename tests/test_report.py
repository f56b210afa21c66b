"""The report stage: tables, figures, the study's figures, and the Snakemake rule.

Model outputs are fabricated with the real writer (``genreflow.evaluate.write_evaluation``)
so the report reads exactly the layout the model jobs leave behind. The workflow tests run
``rules/report.smk`` inside a tiny Snakefile in ``tmp_path`` with a stand-in model rule.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from genreflow.constants import GTZAN_GENRES
from genreflow.evaluate import write_evaluation
from genreflow.report import (
    MODEL_FILES,
    SUMMARY_COLUMNS,
    collect_model_results,
    confused_pairs,
    data_caveat,
    grid_shape,
    markdown_table,
    paper_comparison,
    plot_confusion_grid,
    read_study_figures,
    split_counts,
    summary_table,
    write_report,
)

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
GENRES = list(GTZAN_GENRES)


def fake_predictions(model, input_name, tracks, labels, skill):
    """Predictions that are right with probability ``skill`` (seeded by the job name)."""
    rng = np.random.default_rng(zlib.crc32(f"{model}/{input_name}".encode()))
    predicted = [
        label if rng.random() < skill else rng.choice([g for g in GENRES if g != label])
        for label in labels
    ]
    return pd.DataFrame({"track": tracks, "fold": 0, "true": labels, "predicted": predicted})


def fake_job(root, model, input_name, skill=0.6, n_per_genre=3):
    tracks = [f"{g}/{g}.{k:05d}" for g in GENRES for k in range(n_per_genre)]
    labels = [t.split("/")[0] for t in tracks]
    predictions = fake_predictions(model, input_name, tracks, labels, skill)
    extra = {
        "model": model,
        "input": input_name,
        "mode": "segments" if input_name.endswith("_seg") else "track",
        "best_cv_score": 0.5,
        "best_params": {},
        "fit_seconds": 1.5,
        "n_train": 90,
        "n_folds": 1,
        "split_method": "stratified",
        "device": "cpu",
    }
    return write_evaluation(Path(root) / model / input_name, predictions, GENRES, extra)


# --------------------------------------------------------------------------- study data


def test_study_figures_ship_with_the_package_and_name_the_source():
    figures = read_study_figures()
    assert "Manne" in figures.attrs["source"]
    assert "Long Short Term Memory" in figures.attrs["source"]
    assert figures["accuracy"].between(0, 1).all()
    assert not figures.duplicated(["model", "input"]).any()
    # the table of study.md: classic models on held-out data, networks on training data
    assert figures.loc[
        (figures.model == "adaboost") & (figures.input == "all_stats"), "accuracy"
    ].item() == pytest.approx(0.704)
    assert figures.loc[
        (figures.model == "ann") & (figures.input == "all_stats"), "accuracy"
    ].item() == pytest.approx(0.744)
    assert set(figures.loc[figures.model.isin(["ann", "cnn", "lstm", "rnn"]), "scored_on"]) == {
        "training"
    }
    assert set(figures.loc[~figures.model.isin(["ann", "cnn", "lstm", "rnn"]), "scored_on"]) == {
        "test"
    }


def test_study_figures_use_names_the_config_uses():
    """Model and input names match config.yaml's, so our rows meet the study's."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    schema = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())
    classic = schema["properties"]["classic"]["properties"]["models"]
    neural = schema["properties"]["neural"]["properties"]["models"]
    models = set(classic["propertyNames"]["enum"]) | set(config["neural"]["models"])
    inputs = set(classic["additionalProperties"]["items"]["enum"]) | set(
        neural["additionalProperties"]["items"]["enum"]
    )
    figures = read_study_figures()
    assert set(figures["model"]) <= models
    assert set(figures["input"]) <= inputs


def test_study_figures_without_a_source_line_are_refused(tmp_path):
    path = tmp_path / "figures.csv"
    path.write_text("model,input,accuracy\nknn,mfcc_stats,0.5\n")
    with pytest.raises(ValueError, match="source"):
        read_study_figures(path)


def model_files(models_root):
    """The report rule's inputs: every model x input's files under ``models_root``."""
    return sorted(p for name in MODEL_FILES for p in Path(models_root).glob(f"*/*/{name}"))


# --------------------------------------------------------------------------- tables


def test_summary_matches_predictions_and_lists_missing_jobs(tmp_path):
    fake_job(tmp_path, "knn", "mfcc_stats", skill=0.4)
    fake_job(tmp_path, "svm", "all_stats", skill=0.9)
    jobs = [("knn", "mfcc_stats"), ("svm", "all_stats"), ("lstm", "mfcc_seg")]
    skipped = {("cnn", "mel"): "needs audio frames"}
    results = collect_model_results(model_files(tmp_path), jobs, skipped)
    summary = summary_table(results)

    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 4
    done = summary[summary.status == "ok"]
    # best first
    assert done["accuracy"].is_monotonic_decreasing
    for row in done.itertuples():
        predictions = pd.read_csv(tmp_path / row.model / row.input / "predictions.csv")
        assert row.accuracy == pytest.approx((predictions.true == predictions.predicted).mean())
        assert row.n_test == len(predictions)
    missing = summary[summary.status == "missing"].set_index("model")
    assert "no outputs" in missing.loc["lstm", "reason"]
    assert "results/logs/train_*/lstm/mfcc_seg.log" in missing.loc["lstm", "reason"]
    assert missing.loc["lstm", "mode"] == "segments"
    assert "needs audio frames" in missing.loc["cnn", "reason"]


def test_stale_metrics_are_refused_naming_the_files(tmp_path):
    fake_job(tmp_path, "knn", "mfcc_stats")
    path = tmp_path / "knn" / "mfcc_stats" / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["accuracy"] = 1.0 - metrics["accuracy"] / 2
    path.write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="metrics.json.*predictions.csv"):
        collect_model_results(model_files(tmp_path), [("knn", "mfcc_stats")])


def test_paper_comparison_difference_and_segment_rows():
    study = read_study_figures()
    summary = pd.DataFrame(
        [
            {"model": "rf", "input": "all_stats", "accuracy": 0.75, "status": "ok", "reason": ""},
            {
                "model": "rf",
                "input": "all_stats_seg",
                "accuracy": 0.80,
                "status": "ok",
                "reason": "",
            },
            {"model": "rnn", "input": "mfcc", "accuracy": 0.50, "status": "ok", "reason": ""},
            {
                "model": "knn",
                "input": "mfcc_stats",
                "accuracy": np.nan,
                "status": "missing",
                "reason": "skipped: off",
            },
        ],
        columns=SUMMARY_COLUMNS,
    )
    comparison = paper_comparison(summary, study)
    rf = comparison[(comparison.model == "rf") & (comparison.input == "all_stats")]
    assert list(rf.ours_input) == ["all_stats", "all_stats_seg"]
    assert rf.difference.to_numpy() == pytest.approx([0.75 - 0.70, 0.80 - 0.70])
    knn = comparison[(comparison.model == "knn") & (comparison.input == "mfcc_stats")].iloc[0]
    assert knn.ours_status == "skipped: off" and np.isnan(knn.difference)
    # every study row appears, configured or not
    assert set(zip(study.model, study.input)) == set(zip(comparison.model, comparison.input))
    gboost = comparison[comparison.model == "gboost"]
    assert set(gboost.ours_status) == {"not configured"}


def confusion(pairs, genres=("a", "b", "c")):
    """Counts table with ``pairs = {(true, predicted): n}`` and 5 right per genre."""
    table = pd.DataFrame(0, index=list(genres), columns=list(genres))
    for g in genres:
        table.loc[g, g] = 5
    for (t, p), n in pairs.items():
        table.loc[t, p] = n
    return table


def test_confused_pairs_sum_both_directions_over_jobs():
    confusions = {
        ("m1", "x"): confusion({("a", "b"): 2, ("b", "a"): 1, ("c", "a"): 1}),
        ("m2", "x"): confusion({("b", "a"): 3, ("b", "c"): 1}),
    }
    pairs = confused_pairs(confusions).set_index(["genre_a", "genre_b"])
    assert pairs.index[0] == ("a", "b")
    assert tuple(pairs.loc[("a", "b"), ["a_as_b", "b_as_a", "total", "n_jobs"]]) == (2, 4, 6, 2)
    assert pairs.loc[("a", "c"), "b_as_a"] == 1 and pairs.loc[("a", "c"), "n_jobs"] == 1
    assert pairs["share_of_errors"].sum() == pytest.approx(1.0)
    assert pairs.loc[("a", "b"), "share_of_errors"] == pytest.approx(6 / 8)


def test_split_counts_per_genre_and_part():
    split = pd.DataFrame(
        {
            "track": [f"t{i}" for i in range(7)],
            "label": ["a", "a", "a", "b", "b", "b", "b"],
            "part": ["train", "train", "test", "train", "valid", "test", "test"],
            "fold": 0,
        }
    )
    counts = split_counts(split)
    assert list(counts.columns) == ["train", "valid", "test", "total"]
    assert counts.loc["b"].tolist() == [1, 1, 2, 4]
    assert counts.loc["total", "total"] == 7
    kfold = split.assign(part="cv", fold=[0, 1, 0, 1, 0, 1, 1])
    assert list(split_counts(kfold).columns) == ["fold 0", "fold 1", "total"]


def test_markdown_table_escapes_and_blanks_missing_values():
    frame = pd.DataFrame({"a": ["x|y", None], "b": [1.5, np.nan]})
    lines = markdown_table(frame).splitlines()
    assert lines[0] == "| a | b |"
    assert lines[2] == "| x\\|y | 1.5 |"
    assert lines[3] == "|  |  |"
    assert markdown_table(frame.iloc[:0]) == "None.\n"


def test_grid_shape_has_no_empty_rows():
    for n in range(1, 30):
        rows, cols = grid_shape(n)
        assert rows * cols >= n > (rows - 1) * cols
        assert cols <= 4


def test_confusion_grid_draws_a_panel_per_job_on_one_scale(tmp_path):
    import matplotlib.image

    confusions = {(f"m{k}", "x"): confusion({("a", "b"): k}) for k in range(5)}
    path = tmp_path / "grid.png"
    assert plot_confusion_grid(confusions, path) == 5
    two = tmp_path / "two.png"
    plot_confusion_grid(dict(list(confusions.items())[:2]), two)
    big, small = matplotlib.image.imread(path), matplotlib.image.imread(two)
    assert big.shape[0] > small.shape[0]  # 5 panels take two rows, 2 panels one
    assert big[..., :3].std() > 0.05  # something is drawn
    empty = tmp_path / "empty.png"
    assert plot_confusion_grid({}, empty) == 0 and empty.stat().st_size > 0


def test_write_report_writes_every_file(tmp_path):
    models = tmp_path / "models"
    fake_job(models, "knn", "mfcc_stats", skill=0.5)
    fake_job(models, "rf", "all_stats_seg", skill=0.7)
    results = collect_model_results(
        model_files(models), [("knn", "mfcc_stats"), ("rf", "all_stats_seg")], {("cnn", "mel"): "no audio"}
    )
    split = pd.DataFrame(
        {"track": ["blues/blues.00000"], "label": ["blues"], "part": ["test"], "fold": [0]}
    )
    rejected = pd.DataFrame(
        {"track": ["jazz/jazz.00054"], "source": ["x.wav"], "reason": ["unreadable"]}
    )
    names = [
        "summary_csv",
        "summary_md",
        "summary_html",
        "comparison_md",
        "comparison_csv",
        "confusion_grid",
        "pairs_csv",
        "data_md",
        "front_html",
    ]
    suffix = {"csv": ".csv", "md": ".md", "html": ".html", "grid": ".png"}
    outputs = {n: tmp_path / "report" / (n + suffix[n.split("_")[-1]]) for n in names}
    summary = write_report(results, rejected, split, outputs, dataset="unit test data")
    assert all(p.stat().st_size > 0 for p in outputs.values())
    md = outputs["summary_md"].read_text()
    assert "unit test data" in md
    assert md.index("| 1 | rf | all_stats_seg") < md.index("| 2 | knn | mfcc_stats")
    assert "cnn | mel | skipped: no audio" in md
    assert "jazz/jazz.00054" in outputs["data_md"].read_text()
    comparison = outputs["comparison_md"].read_text()
    assert "Manne" in comparison and "training data" in comparison
    written = pd.read_csv(outputs["summary_csv"])
    assert list(written.columns) == SUMMARY_COLUMNS and len(written) == len(summary) == 3
    front = outputs["front_html"].read_text()
    assert "Best 2 of 2 model x inputs" in front and "1 missing" in front
    html = outputs["summary_html"].read_text()
    assert "<table" in html and "rf" in html and "unreadable" in html


# --------------------------------------------------------------------------- workflow

SNAKEFILE = """
import os, sys, zlib
sys.path.insert(0, {root!r})
os.environ["PYTHONPATH"] = {root!r}

configfile: "config.yaml"


include: {common!r}


# stand-ins for the configured jobs (set after common.smk, which reads them from config)
MODEL_JOBS = [("knn", "mfcc_stats"), ("svm", "all_stats"), ("cnn", "mel")]
SKIPPED_JOBS = {{("lstm", "mfcc"): "needs audio frames; dataset.source is 'table'"}}


include: {rules!r}


rule all:
    input:
        "results/report/summary.md",


rule fake_model:
    input:
        "results/splits/split.csv",
    output:
        metrics="results/models/{{model}}/{{input}}/metrics.json",
        predictions="results/models/{{model}}/{{input}}/predictions.csv",
        confusion="results/models/{{model}}/{{input}}/confusion.csv",
        png=report(
            "results/models/{{model}}/{{input}}/confusion.png",
            caption={caption!r},
            category="Confusion matrices",
            subcategory="Per model x input",
            labels={{"model": "{{model}}", "input": "{{input}}"}},
        ),
        history="results/models/{{model}}/{{input}}/history.csv",
    log:
        "results/logs/fake_model/{{model}}/{{input}}.log",
    run:
        import numpy as np
        import pandas as pd
        from genreflow.evaluate import write_evaluation

        if f"{{wildcards.model}}/{{wildcards.input}}" in config.get("fail", []):
            with open(log[0], "w") as handle:
                print("epoch 1", file=handle)
                print("ValueError: this stand-in model is told to fail", file=handle)
            raise ValueError("this stand-in model is told to fail")
        split = pd.read_csv(input[0])
        test = split[split.part == "test"]
        genres = sorted(split.label.unique())
        rng = np.random.default_rng(zlib.crc32(wildcards.model.encode()))
        predicted = [t if rng.random() < 0.6 else rng.choice(genres) for t in test.label]
        predictions = pd.DataFrame(
            {{"track": test.track, "fold": 0, "true": test.label, "predicted": predicted}}
        )
        extra = {{"model": wildcards.model, "input": wildcards.input, "mode": "track",
                  "best_cv_score": None, "n_train": int((split.part == "train").sum()),
                  "fit_seconds": 0.1, "device": "cpu"}}
        write_evaluation(os.path.dirname(output.metrics), predictions, genres, extra)
        pd.DataFrame({{"epoch": [0], "loss": [1.0]}}).to_csv(output.history, index=False)
"""


def snakemake(workdir, *args, check=True):
    proc = subprocess.run(
        [
            *SNAKEMAKE,
            "--cores",
            "1",
            "--directory",
            str(workdir),
            "--snakefile",
            str(workdir / "Snakefile"),
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_rules(workdir, *args):
    """Rules a dry run would run (empty when everything is up to date)."""
    proc = snakemake(workdir, "--dry-run", *args)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return set()
    jobs = {line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith("rule ")}
    return jobs - {"all"}


@pytest.fixture(scope="module")
def tiny_workflow(tmp_path_factory):
    """A tiny workflow: split + rejected list as sources, three stand-in model jobs."""
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "Snakefile").write_text(
        SNAKEFILE.format(
            root=str(ROOT),
            rules=str(ROOT / "rules" / "report.smk"),
            common=str(ROOT / "rules" / "common.smk"),
            caption=str(ROOT / "report" / "confusion.rst"),
        )
    )
    (workdir / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "dataset": {"source": "table", "table": "features.csv"},
                "features": {"tracks_per_job": 50},
                "split": {"method": "stratified"},
                "classic": {"models": {}},
                "neural": {"models": {}},
                "segments": {"length": 3.0, "hop": 3.0},
            }
        )
    )
    (workdir / "features.csv").write_text("filename,label\n")  # dataset.table must exist
    tracks = [f"{g}/{g}.{k:05d}" for g in GENRES for k in range(4)]
    split = pd.DataFrame(
        {
            "track": tracks,
            "label": [t.split("/")[0] for t in tracks],
            "part": ["train", "train", "test", "test"] * len(GENRES),
            "fold": 0,
        }
    )
    (workdir / "results/splits").mkdir(parents=True)
    (workdir / "results/features").mkdir(parents=True)
    split.to_csv(workdir / "results/splits/split.csv", index=False)
    pd.DataFrame(
        {
            "track": ["jazz/jazz.00054"],
            "source": ["genres/jazz/jazz.00054.wav"],
            "reason": ["unreadable: not a RIFF file"],
        }
    ).to_csv(workdir / "results/features/rejected.csv", index=False)
    snakemake(workdir)
    return workdir


def test_report_rule_summarises_every_configured_job(tiny_workflow):
    report = tiny_workflow / "results/report"
    summary = pd.read_csv(report / "summary.csv", keep_default_na=False)
    assert set(zip(summary.model, summary.input)) == {
        ("knn", "mfcc_stats"),
        ("svm", "all_stats"),
        ("cnn", "mel"),
        ("lstm", "mfcc"),
    }
    for row in summary[summary.status == "ok"].itertuples():
        predictions = pd.read_csv(
            tiny_workflow / "results/models" / row.model / row.input / "predictions.csv"
        )
        assert float(row.accuracy) == pytest.approx(
            (predictions.true == predictions.predicted).mean()
        )
    lstm = summary[summary.model == "lstm"].iloc[0]
    assert lstm.status == "missing" and "dataset.source is 'table'" in lstm.reason
    assert "lstm | mfcc | skipped" in (report / "summary.md").read_text()
    data = (report / "data.md").read_text()
    assert "jazz/jazz.00054" in data and "| blues | 2 | 2 | 4 |" in data
    assert (report / "confusion_matrices.png").stat().st_size > 10_000
    assert (tiny_workflow / "results/logs/report/report.log").read_text().count(
        "missing lstm/mfcc"
    ) == 1


def test_report_reruns_when_metrics_change_and_only_then(tiny_workflow):
    assert planned_rules(tiny_workflow) == set()
    # neither a model file the report does not read, nor a newer mtime with the same
    # content (Snakemake compares the checksum it recorded) reruns the report
    os.utime(tiny_workflow / "results/models/cnn/mel/history.csv")
    metrics_path = tiny_workflow / "results/models/svm/all_stats/metrics.json"
    os.utime(metrics_path)
    assert planned_rules(tiny_workflow) == set()
    metrics = json.loads(metrics_path.read_text())
    metrics["fit_seconds"] += 1.0
    metrics_path.write_text(json.dumps(metrics))
    assert planned_rules(tiny_workflow) == {"report"}
    snakemake(tiny_workflow)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")


def test_snakemake_report_shows_summary_and_confusion_matrix(tiny_workflow, tmp_path):
    browser = chromium()
    html_report = tmp_path / "report.html"
    snakemake(tiny_workflow, "--report", str(html_report))
    zip_report = tmp_path / "report.zip"
    snakemake(tiny_workflow, "--report", str(zip_report))
    with zipfile.ZipFile(zip_report) as archive:
        names = archive.namelist()
    assert any(n.endswith("confusion_matrices.png") for n in names)
    assert any(n.endswith("summary.html") for n in names)

    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            html_report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = proc.stdout
    # the front page: the best model x inputs as a table
    assert "Best 3 of 3 model x inputs" in dom, proc.stderr[-2000:]
    front = dom[dom.index("Best 3 of 3 model x inputs") :]
    front = front[: front.index("</table>")]
    assert "<table" in front and all(m in front for m in ("knn", "svm", "cnn"))
    assert "Confusion matrices" in dom and "Accuracy" in dom  # the categories' menu
    # the results the page carries: the full summary page with the confusion grid in it,
    # the grid itself, and each model x input's matrix labelled with model and input
    results = json.loads(re.search(r"var results = (\{.*?\});\s*</script>", dom, re.S).group(1))
    by_name = {}
    for entry in results.values():
        by_name.setdefault(entry["name"], []).append(entry)
    summary_page = base64.b64decode(by_name["summary.html"][0]["data_uri"].split("base64,")[1])
    summary_page = summary_page.decode()
    assert "Held-out accuracy, best first" in summary_page and "<table" in summary_page
    assert 'alt="confusion matrices of every model x input"' in summary_page
    assert "data:image/png;base64," in summary_page
    assert by_name["confusion_matrices.png"][0]["mime_type"] == "image/png"
    labels = {(e["labels"]["model"], e["labels"]["input"]) for e in by_name["confusion.png"]}
    assert labels == {("knn", "mfcc_stats"), ("svm", "all_stats"), ("cnn", "mel")}


def test_a_failed_job_blocks_the_report_unless_missing_is_allowed(tiny_workflow, tmp_path):
    workdir = tmp_path / "failing"
    shutil.copytree(tiny_workflow, workdir)
    shutil.rmtree(workdir / "results/models/svm")
    shutil.rmtree(workdir / "results/report")
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["fail"] = ["svm/all_stats"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))

    proc = snakemake(workdir, "--keep-going", check=False)
    assert proc.returncode != 0
    assert not (workdir / "results/models/svm/all_stats/metrics.json").exists()
    assert not (workdir / "results/report/summary.csv").exists()

    snakemake(workdir, "report", "--config", "report={allow_missing: true}")
    summary = pd.read_csv(workdir / "results/report/summary.csv", keep_default_na=False)
    svm = summary.set_index("model").loc["svm"]
    assert svm.status == "missing"
    assert "no outputs: the job failed or has not run" in svm.reason
    assert "results/logs/train_*/svm/all_stats.log" in svm.reason
    assert set(summary[summary.status == "ok"].model) == {"knn", "cnn"}
    # and Snakemake's report of the same partial run builds too
    html_report = tmp_path / "partial.html"
    snakemake(workdir, "--report", str(html_report), "--config", "report={allow_missing: true}")
    assert html_report.stat().st_size > 0


@pytest.mark.parametrize("value, ok", [(True, True), (False, True), ("true", True), ("yes", False)])
def test_config_allow_missing_takes_a_boolean_or_the_command_lines_string(value, ok):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert config["report"]["allow_missing"] is False  # strict unless asked
    config["report"]["allow_missing"] = value
    if ok:
        validate(config, str(ROOT / "schemas/config.schema.yaml"))
    else:
        with pytest.raises(WorkflowError, match="allow_missing|yes"):
            validate(config, str(ROOT / "schemas/config.schema.yaml"))


def test_the_comparison_warns_when_the_data_is_not_the_studys():
    demo = pd.DataFrame({"track": [f"{g}/{g}.{i:05d}" for g in GENRES for i in range(8)]})
    demo["label"] = demo["track"].str.split("/").str[0]
    assert "Not the study's data" in data_caveat(demo, "generated demo audio (8 tracks per genre)")
    gtzan = pd.DataFrame({"track": [f"{g}/{g}.{i:05d}" for g in GENRES for i in range(100)]})
    gtzan["label"] = gtzan["track"].str.split("/").str[0]
    assert data_caveat(gtzan, "folder /data/gtzan/genres") == ""
    assert "Not the study's data" in data_caveat(gtzan.iloc[:101], "folder gtzan-mini")
