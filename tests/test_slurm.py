"""genreflow's SLURM set-up on a real one-node cluster (cluster/start.sh).

The cluster is munge + slurmctld + slurmd on this machine with two fake GPUs; Snakemake's
SLURM executor submits to it with sbatch. Every run is the command a user types in the
repository root, `snakemake --profile slurm` (profiles/default joins as the workflow
profile by itself), plus the test-only overrides of profiles/slurm-test (job status by
squeue: the cluster has no accounting; no account) and a work folder of its own.

Skipped when SLURM is not installed (apt-get install slurmctld slurmd slurm-client munge)
or the tests do not run as root; where the CI environment variable is set they fail
instead, so CI cannot pass without running them.
"""

import fcntl
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "profiles"
STATE = ROOT / ".cluster"
SLURM_COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol")
# the executor's line for each submission, e.g.
# "Job 3 has been submitted with SLURM jobid 12 (log: /w/.snakemake/slurm_logs/rule_x/12.log)."
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)")
# settings of profiles/slurm read from the environment: a user's own must not leak in
CLUSTER_ENV = (
    "GENREFLOW_SLURM_PARTITION",
    "GENREFLOW_SLURM_ACCOUNT",
    "GENREFLOW_GPU_PARTITION",
    "GENREFLOW_GPU_MODEL",
)


def why_no_cluster():
    """Why the test cluster cannot run here, or None when it can."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [c for c in SLURM_COMMANDS if shutil.which(c, path=path) is None]
    if missing:
        return (
            f"SLURM is not installed (no {', '.join(missing)}); "
            "install it with: apt-get install slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        return "the test cluster must run as root (slurmd starts jobs as their owner)"
    return None


def daemons_running(state):
    """True when slurmctld of the cluster in ``state`` is alive."""
    pidfile = state / "run" / "slurmctld.pid"
    try:
        pid = int(pidfile.read_text())
        return Path(f"/proc/{pid}/comm").read_text().strip() == "slurmctld"
    except (OSError, ValueError):
        return False


@dataclass
class Cluster:
    """The running test cluster: the environment that reaches it."""

    env: dict

    def command(self, *args, check=True):
        """Run a SLURM client command (squeue, scontrol, scancel); its stdout."""
        result = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def job_field(self, job_id, field):
        """One squeue field of a job, e.g. ``%T`` state, ``%P`` partition, ``%m`` memory
        (finished jobs stay listed for MinJobAge = 600 s)."""
        return self.command("squeue", "-h", "-t", "all", "-j", str(job_id), "-o", field).strip()

    def job_state(self, job_id):
        """SLURM's state of a job: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED..."""
        return self.job_field(job_id, "%T")

    def job_details(self, job_id):
        """``scontrol show job -d``: allocation details such as JOB_GRES."""
        return self.command("scontrol", "show", "job", "-d", str(job_id))


@contextmanager
def cluster_lock():
    """Serialise starting and stopping the cluster between test sessions."""
    STATE.mkdir(exist_ok=True)
    with open(STATE / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def live_users():
    """Test sessions (pids) using the cluster now."""
    users = STATE / "users"
    users.mkdir(exist_ok=True)
    alive = set()
    for entry in users.iterdir():
        if entry.name.isdigit() and Path(f"/proc/{entry.name}").exists():
            alive.add(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return alive


@pytest.fixture(scope="session")
def cluster():
    """The one-node cluster, started once; the last test session using it stops it.

    A cluster someone started by hand (cluster/start.sh) is used and left running.
    """
    reason = why_no_cluster()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the SLURM tests must run, but {reason}")
        pytest.skip(reason)
    started_by_tests = STATE / "run" / "started-by-tests"
    with cluster_lock():
        if not daemons_running(STATE):
            started = subprocess.run(
                ["bash", str(ROOT / "cluster" / "start.sh"), str(STATE)],
                capture_output=True, text=True, timeout=120,
            )
            if started.returncode != 0:
                pytest.fail(f"cluster/start.sh failed:\n{started.stdout}\n{started.stderr}")
            started_by_tests.touch()
        live_users()  # creates users/ and drops sessions that died
        (STATE / "users" / str(os.getpid())).touch()
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    env.update(SLURM_CONF=str(STATE / "slurm.conf"), PYTHONUNBUFFERED="1")
    yield Cluster(env=env)
    with cluster_lock():
        (STATE / "users" / str(os.getpid())).unlink(missing_ok=True)
        if started_by_tests.exists() and not live_users():
            subprocess.run(
                ["bash", str(ROOT / "cluster" / "stop.sh"), str(STATE)],
                capture_output=True, text=True, timeout=120,
            )
            started_by_tests.unlink(missing_ok=True)


# the venv's `snakemake` script, as a user types it (python -m snakemake elsewhere)
SNAKEMAKE = (
    [str(Path(sys.executable).with_name("snakemake"))]
    if Path(sys.executable).with_name("snakemake").exists()
    else [sys.executable, "-m", "snakemake"]
)


def snakemake_command(workdir, *args, snakefile, profile="slurm"):
    """``snakemake --profile slurm`` as typed in the repository root (run it with
    ``cwd=ROOT``), plus the test cluster's overrides; outputs go to ``workdir``."""
    return [
        *SNAKEMAKE, "--profile", profile, "--profile", "profiles/slurm-test",
        "--snakefile", str(snakefile), "--directory", str(workdir), *map(str, args),
    ]


def run_on_cluster(cluster, workdir, *args, snakefile, timeout=600, env=None):
    """Run snakemake against the cluster; the CompletedProcess (stdout and stderr merged)."""
    result = subprocess.run(
        snakemake_command(workdir, *args, snakefile=snakefile),
        cwd=ROOT, env={**cluster.env, **(env or {})}, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-8000:]}")
    return result


def submissions(output):
    """``[(slurm_job_id, what)]`` of every sbatch in a run's output, in order.

    ``what`` is the executor's log folder name: ``rule_<rule>`` for one job (its log
    lies below, in a folder per wildcards), ``group_<group>_<rules>`` for a bundle.
    """
    found = []
    for job, log in SUBMITTED.findall(output):
        parts = Path(log).parts
        found.append((int(job), parts[parts.index("slurm_logs") + 1]))
    return found


def submitted_ids(output, what):
    """SLURM job ids submitted for one rule (``rule_x``) or bundle (``group_x...``)."""
    return [job for job, name in submissions(output) if name.startswith(what)]


# --- a GPU job, on a throw-away workflow whose rule has the real rule's name and GPU
# count, so that profiles/slurm routes it as the real one -----------------------------

TOY_SNAKEFILE = textwrap.dedent(
    """
    rule train_neural:
        output:
            "gpu.txt",
        resources:
            gpu=1,
        shell:
            "echo CUDA_VISIBLE_DEVICES=${{CUDA_VISIBLE_DEVICES:-}} JOB=${{SLURM_JOB_ID:-}} > {output}"
    """
)


def test_gpu_rule_gets_a_gpu_of_the_model_and_partition_asked(cluster, tmp_path):
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(TOY_SNAKEFILE)
    result = run_on_cluster(
        cluster, tmp_path, snakefile=snakefile,
        # what a user sets for a cluster with a GPU partition (README)
        env={"GENREFLOW_GPU_PARTITION": "gpu", "GENREFLOW_GPU_MODEL": "fake"},
    )
    [job] = submitted_ids(result.stdout, "rule_train_neural")
    written = (tmp_path / "gpu.txt").read_text()
    # SLURM sets CUDA_VISIBLE_DEVICES only in a job it gave a GPU
    assert re.search(r"CUDA_VISIBLE_DEVICES=\d", written), written
    assert f"JOB={job}" in written
    assert "JOB_GRES=gpu:fake:1" in cluster.job_details(job)
    assert cluster.job_field(job, "%P") == "gpu"


def wait_for(condition, timeout, what, process=None):
    """Poll ``condition()`` until true; fail naming ``what`` after ``timeout`` seconds
    or as soon as ``process`` (a background snakemake) has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"snakemake ended ({process.returncode}) before {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --- the real workflow ---------------------------------------------------------------

SNAKEFILE = ROOT / "Snakefile"
GENRES = ("blues", "classical", "metal")
TRACKS_PER_GENRE = 4
TRACK_SECONDS = 6.0
# the models of the run: one per kind of job (the rest of config.yaml's set to none)
CLASSIC_MODELS = {"knn": ["mfcc_stats"], "logreg": ["all_stats"]}
NEURAL_MODELS = {"ann": ["all_stats"]}


@dataclass
class Workflow:
    """A small dataset and config for the real workflow, and how to run it."""

    workdir: Path
    configfile: Path
    tracks: int

    def args(self, *args):
        """Command-line arguments: ``args``, then config.yaml and the test overlay."""
        return [*args, "--configfile", str(ROOT / "config.yaml"), str(self.configfile)]

    def model_dir(self, model, input_):
        return self.workdir / "results" / "models" / model / input_


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """12 generated tracks of 3 genres in a folder, and a config with three tiny models."""
    import soundfile as sf
    import yaml

    from genreflow.constants import SR
    from genreflow.demo import generate_track

    base = tmp_path_factory.mktemp("slurm_workflow")
    audio = base / "audio"
    for genre in GENRES:
        for index in range(TRACKS_PER_GENRE):
            path = audio / genre / f"{genre}.{index:05d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, generate_track(genre, index, TRACK_SECONDS), SR, subtype="PCM_16")
    defaults = yaml.safe_load((ROOT / "config.yaml").read_text())
    tiny = yaml.safe_load((ROOT / "tests" / "config" / "tiny.yaml").read_text())
    # config files merge key by key: name every model of config.yaml, most with no input
    classic = {m: [] for m in defaults["classic"]["models"]} | CLASSIC_MODELS
    network = {m: [] for m in defaults["neural"]["models"]} | NEURAL_MODELS
    overlay = {
        "dataset": {"source": "folder", "folder": str(audio)},
        "classic": {**tiny["classic"], "models": classic},
        # the cluster's GPUs are fake (/dev/null): TensorFlow sees none and a network
        # job given one would stop (the last test checks that it does)
        "neural": {**tiny["neural"], "models": network, "allow_cpu": True},
    }
    configfile = base / "slurm-test.yaml"
    configfile.write_text(yaml.safe_dump(overlay))
    workdir = base / "work"
    workdir.mkdir()
    return Workflow(workdir=workdir, configfile=configfile, tracks=len(GENRES) * TRACKS_PER_GENRE)


# --- the profile as a user names it: no cluster needed ----------------------------------


def test_profile_slurm_is_found_by_name_from_the_repository_root(monkeypatch):
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(ROOT)
    expected = (PROFILES / "slurm" / "config.yaml").resolve()
    for name in ("slurm", "profiles/slurm"):
        found = get_profile_dir(name)
        assert found is not None, f"--profile {name}: no profile found from {ROOT}"
        assert found[1].resolve() == expected


def dry_run_resources(output, rule):
    """``[{resource: value}]``, one per job of ``rule``, from a dry run's job listing."""
    found, current = [], None
    for line in output.splitlines():
        header = re.match(r"\s*(?:local)?rule (\w+):$", line)
        if header:
            current = header.group(1)
            continue
        listed = re.match(r"\s*resources: (.*)$", line)
        if listed and current == rule:
            found.append(dict(item.split("=", 1) for item in listed.group(1).split(", ")))
    return found


@pytest.mark.parametrize("profile", ["slurm", "profiles/slurm", None], ids=str)
def test_rules_declare_what_a_job_needs_on_any_executor(workflow, tmp_path, profile):
    """The GPU, memory and minutes of a network job come from its rule: the same with
    the SLURM profile (by name or by path) as in a plain local run."""
    profiles = ["--profile", profile] if profile else []
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_ENV}
    result = subprocess.run(
        [*SNAKEMAKE, *profiles, "-n", "--snakefile", str(SNAKEFILE),
         "--directory", str(tmp_path), *workflow.args()],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    if profile:
        assert f"Using profiles {profile} and workflow specific profile profiles/default" in output
    [network] = dry_run_resources(output, "train_neural")
    assert (network["gpu"], network["mem_mb"], network["runtime"]) == ("1", "16000", "240")
    for classic in dry_run_resources(output, "train_classic"):
        assert "gpu" not in classic


def job_counts(output):
    """``{rule: count}`` from the job table Snakemake prints before it starts."""
    counts = {}
    lines = iter(output.splitlines())
    for line in lines:
        if line.split()[:2] == ["job", "count"]:
            break
    for line in lines:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            if counts:
                break
            continue
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def all_job_ids(cluster):
    """Every job the cluster knows (finished ones for MinJobAge)."""
    return set(cluster.command("squeue", "-h", "-t", "all", "-o", "%i").split())


def test_dry_run_lists_the_jobs_without_submitting(cluster, workflow, tmp_path):
    before = all_job_ids(cluster)
    result = run_on_cluster(cluster, tmp_path, *workflow.args("-n"), snakefile=SNAKEFILE)
    assert job_counts(result.stdout) == {
        "extract_features": 1,  # fewer tracks than features.tracks_per_job: one shard
        "merge_features": 1,
        "make_split": 1,
        "train_classic": sum(map(len, CLASSIC_MODELS.values())),
        "train_neural": sum(map(len, NEURAL_MODELS.values())),
        "report": 1,
        "all": 1,
    }
    assert all_job_ids(cluster) == before
    assert not submissions(result.stdout)
    assert not (tmp_path / ".snakemake" / "slurm_logs").exists()


@pytest.mark.parametrize("graph", ["--rulegraph", "--dag"])
def test_graphs_are_valid_dot(cluster, workflow, tmp_path, graph):
    dot = shutil.which("dot")
    if dot is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but graphviz's dot is missing (apt-get install graphviz)")
        pytest.skip("graphviz's dot is not installed (apt-get install graphviz)")
    result = subprocess.run(
        snakemake_command(tmp_path, *workflow.args(graph), snakefile=SNAKEFILE),
        cwd=ROOT, env=cluster.env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    svg = subprocess.run(
        [dot, "-Tsvg"], input=result.stdout, capture_output=True, text=True, timeout=60
    )
    assert svg.returncode == 0, svg.stderr
    for rule in ("extract_features", "merge_features", "train_classic", "train_neural", "report"):
        assert rule in svg.stdout


@pytest.fixture(scope="module")
def full_run(cluster, workflow):
    """The whole workflow through profiles/slurm; the run's output."""
    return run_on_cluster(cluster, workflow.workdir, *workflow.args(), snakefile=SNAKEFILE).stdout


def test_whole_workflow_finishes_on_slurm(cluster, workflow, full_run):
    report = workflow.workdir / "results" / "report" / "summary.csv"
    assert report.exists()
    for model, inputs in (CLASSIC_MODELS | NEURAL_MODELS).items():
        for input_ in inputs:
            assert (workflow.model_dir(model, input_) / "metrics.json").exists()
    # every job that ran outside the main process went through sbatch and succeeded
    local = set(re.findall(r"^\s*localrule (\w+):", full_run, re.MULTILINE))
    remote = set(re.findall(r"^\s*rule (\w+):", full_run, re.MULTILINE))
    assert remote >= {"extract_features", "merge_features", "make_split", "train_classic",
                      "train_neural"}
    submitted = submissions(full_run)
    for rule in remote - local:
        names = [name for _, name in submitted if name == f"rule_{rule}" or
                 (name.startswith("group_") and rule in name)]
        assert names, f"rule {rule} ran without an sbatch submission"
    for job, name in submitted:
        assert cluster.job_state(job) == "COMPLETED", f"{name}: SLURM job {job}"
        logs = list((workflow.workdir / ".snakemake" / "slurm_logs" / name).rglob(f"{job}.log"))
        assert logs, f"no SLURM log for job {job}"


def test_extraction_is_one_submission_per_shard(full_run, workflow):
    # features.tracks_per_job (50) > the tracks: one shard, one job
    assert not submitted_ids(full_run, "group_")
    assert len(submitted_ids(full_run, "rule_extract_features")) == 1
    assert len(re.findall(r"Finished jobid: \d+ \(Rule: extract_features\)", full_run)) == 1


def test_network_jobs_get_a_gpu(cluster, full_run):
    jobs = submitted_ids(full_run, "rule_train_neural")
    assert len(jobs) == sum(map(len, NEURAL_MODELS.values()))
    for job in jobs:
        # a job SLURM gave a GPU: its environment has CUDA_VISIBLE_DEVICES
        assert "JOB_GRES=gpu:" in cluster.job_details(job)
    for job in submitted_ids(full_run, "rule_train_classic"):
        assert "JOB_GRES=gpu:" not in cluster.job_details(job)


def start_run(cluster, workflow, *args):
    """Start snakemake in the background; (process, log file)."""
    log = workflow.workdir / f"run-{time.monotonic_ns()}.log"
    with open(log, "w") as sink:
        process = subprocess.Popen(
            snakemake_command(workflow.workdir, *workflow.args(*args), snakefile=SNAKEFILE),
            cwd=ROOT, env=cluster.env, stdout=sink, stderr=subprocess.STDOUT,
        )
    return process, log


def cancel_when_running(cluster, process, log, what, started=lambda: True):
    """scancel the first SLURM job of ``what`` once it runs and ``started()``; its id."""
    job = wait_for(lambda: submitted_ids(log.read_text(), what), 180,
                   f"a {what} submission", process)[0]
    wait_for(lambda: cluster.job_state(job) == "RUNNING" and started(), 180,
             f"SLURM job {job} ({what}) to run", process)
    cluster.command("scancel", str(job))
    return job


def finish(process, timeout=300):
    """Wait for a background run; its return code."""
    try:
        return process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()


def outputs_mtimes(workflow):
    """{path: mtime} of every model output."""
    models = workflow.workdir / "results" / "models"
    return {p: p.stat().st_mtime_ns for p in models.rglob("*") if p.is_file()}


def test_forced_model_reruns_alone_and_a_cancelled_attempt_is_retried(cluster, workflow, full_run):
    forced = workflow.model_dir("knn", "mfcc_stats")
    before = outputs_mtimes(workflow)
    target = forced.relative_to(workflow.workdir) / "metrics.json"
    process, log = start_run(cluster, workflow, "--forcerun", str(target))
    cancelled = cancel_when_running(cluster, process, log, "rule_train_classic")
    assert finish(process) == 0, log.read_text()[-6000:]
    output = log.read_text()
    # profiles/slurm retries: attempt 1 cancelled, attempt 2 ran to the end
    first, second = submitted_ids(output, "rule_train_classic")
    assert first == cancelled
    assert cluster.job_state(second) == "COMPLETED"
    # ... asking for more memory (the rule's mem_mb grows with the attempt)
    memory = [cluster.job_field(job, "%m") for job in (first, second)]
    assert int(memory[1].rstrip("M")) == 2 * int(memory[0].rstrip("M")), memory
    assert [name for _, name in submissions(output)] == ["rule_train_classic"] * 2
    ran = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", output)
    assert sorted(ran) == ["all", "report", "train_classic"]
    after = outputs_mtimes(workflow)
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed and all(forced in p.parents for p in changed)


def test_killed_job_leaves_no_output_and_a_rerun_completes_it(cluster, workflow, full_run):
    model = workflow.model_dir("ann", "all_stats")
    training_log = workflow.workdir / "results" / "logs" / "train_neural" / "ann" / "all_stats.log"
    started_at = time.time()
    target = model.relative_to(workflow.workdir) / "metrics.json"
    process, log = start_run(cluster, workflow, "--forcerun", str(target), "--retries", "0")
    # cancel mid-way: once the training script has started writing its log
    cancel_when_running(
        cluster, process, log, "rule_train_neural",
        started=lambda: training_log.exists() and training_log.stat().st_mtime > started_at,
    )
    assert finish(process) != 0
    leftovers = [p.name for p in model.iterdir()] if model.exists() else []
    assert leftovers == [], f"the killed job left {leftovers}"

    rerun = run_on_cluster(cluster, workflow.workdir, *workflow.args(), snakefile=SNAKEFILE)
    ran = re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", rerun.stdout)
    assert sorted(ran) == ["all", "report", "train_neural"]
    assert (model / "metrics.json").exists() and (model / "model.keras").exists()


def test_network_job_given_a_gpu_tensorflow_cannot_see_stops_at_once(cluster, workflow, full_run):
    """Without neural.allow_cpu, a job SLURM gave a GPU that TensorFlow cannot use (the
    cluster's GPUs are fake; tensorflow-cpu) fails before training, naming the fix."""
    model = workflow.model_dir("ann", "all_stats")
    training_log = workflow.workdir / "results" / "logs" / "train_neural" / "ann" / "all_stats.log"
    target = model.relative_to(workflow.workdir) / "metrics.json"
    process, log = start_run(cluster, workflow, "--forcerun", str(target), "--retries", "0",
                             "--config", "neural={allow_cpu: false}")
    assert finish(process) != 0, log.read_text()[-4000:]
    [job] = submitted_ids(log.read_text(), "rule_train_neural")
    assert cluster.job_state(job) == "FAILED"
    message = training_log.read_text()
    assert "was given a GPU (CUDA_VISIBLE_DEVICES=" in message
    assert "make venv GPU=1" in message and "neural: {install: gpu}" in message
    assert "Epoch" not in message  # stopped before training
