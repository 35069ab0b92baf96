"""The cluster recipes work as far as this machine can tell: every documented `--set` path
and spec validates, the Slurm script passes bash -n and shellcheck, and the floodlab
commands the recipes run parse with the real CLI."""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import ray
import yaml

from floodlab.cli import main
from floodlab.errors import SpecError
from floodlab.specs import load_spec

ROOT = Path(__file__).resolve().parents[2]
SBATCH = ROOT / "cluster" / "slurm" / "floodlab.sbatch"
RAYJOB = ROOT / "cluster" / "kuberay" / "rayjob.yaml"
DOCUMENTS = [
    ROOT / "docs" / "cluster.md",
    ROOT / "README.md",
    ROOT / "ray_cluster.yaml",
    ROOT / "ray_cluster.local.yaml",
    SBATCH,
    RAYJOB,
]
QUICKSTART = ROOT / "experiments" / "quickstart.yaml"
_VAR = re.compile(r"\$\{?\w+\}?")


def _lines(text: str) -> list[str]:
    """Command lines of a script, or of a document's fenced code blocks and comments, with
    continuations joined and shell variables replaced by a plain word."""
    if "```" in text:
        text = "\n".join(text.split("```")[1::2])  # inside the fences only
    joined = re.sub(r"\\\n\s*(#\s*)?", " ", text)
    lines = []
    for line in joined.splitlines():
        line = _VAR.sub("v", line.strip().lstrip("#$ ").replace('"$@"', ""))
        try:
            lines.append(shlex.split(line, comments=True))
        except ValueError:  # prose with an apostrophe
            continue
    return [tokens for tokens in lines if tokens]


def _overrides(text: str) -> list[str]:
    """Every `--set PATH=VALUE` of a document (placeholders such as PATH=VALUE left out)."""
    out = []
    for tokens in _lines(text):
        for flag, value in itertools.pairwise(tokens):
            placeholder = value.lower().startswith("path=") or value.endswith("...")
            if flag == "--set" and "=" in value and not placeholder:
                out.append(value)
    return out


def _commands(text: str) -> list[list[str]]:
    """The arguments of every `floodlab ...` command line of a script or document."""
    out = []
    for tokens in _lines(text):
        synopsis = any(t.startswith("[") for t in tokens)  # `floodlab submit SPEC [--set ...]`
        if tokens[0] == "floodlab" and "|" not in tokens and not synopsis:
            # A diagram's arrow ends the command.
            end = next((i for i, t in enumerate(tokens) if "─" in t), len(tokens))
            out.append(tokens[1:end])
    return out


def test_every_documented_override_and_spec_validates() -> None:
    overrides, specs = [], set()
    for doc in DOCUMENTS:
        text = doc.read_text()
        overrides += [(doc.name, o) for o in _overrides(text)]
        specs |= set(re.findall(r"experiments/[\w.-]+\.yaml", text))
    assert len(overrides) >= 8 and specs  # the documents do show them
    for doc, override in overrides:
        try:
            load_spec(QUICKSTART, [override])
        except SpecError as err:
            raise AssertionError(f"{doc}: --set {override}: {err.problems}") from None
    for spec in specs:
        assert (ROOT / spec).is_file(), spec
        load_spec(ROOT / spec)


def _parse(args: list[str]) -> None:
    """Parse `floodlab ARGS` with the real command tree (nothing runs)."""
    command: click.Command = main
    while isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), args[0]) if args else None
        assert sub is not None, f"floodlab has no command {args[:1]}"
        command, args = sub, args[1:]
    command.make_context(command.name, list(args))


def test_the_floodlab_commands_of_the_recipes_parse() -> None:
    commands = []
    for doc in (SBATCH, ROOT / "docs" / "cluster.md"):
        commands += _commands(doc.read_text())
    job = yaml.safe_load(RAYJOB.read_text())
    commands.append(shlex.split(job["spec"]["entrypoint"])[1:])
    verbs = {c[0] for c in commands}
    assert {"tune", "convert", "submit"} <= verbs
    for args in commands:
        _parse(list(args))


def test_the_slurm_script_is_valid_bash_and_passes_shellcheck() -> None:
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)
    shellcheck = shutil.which("shellcheck") or shutil.which(
        "shellcheck", path=str(Path(sys.executable).parent)
    )
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (it comes with the dev extra)")
    result = subprocess.run([shellcheck, str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    text = SBATCH.read_text()
    # One Ray node per Slurm node, started under srun with --block; the dashboard on loopback.
    assert "#SBATCH --ntasks-per-node=1" in text and text.count("--block &") == 2
    assert "--dashboard-host=127.0.0.1" in text and "0.0.0.0" not in text


def test_the_rayjob_matches_the_ray_floodlab_runs_and_keeps_the_dashboard_inside() -> None:
    job = yaml.safe_load(RAYJOB.read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    assert f"rayproject/ray:{ray.__version__}-py311-gpu" in RAYJOB.read_text()
    pods = [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        mounts = {m["mountPath"] for c in pod["spec"]["containers"] for m in c["volumeMounts"]}
        assert "/shared" in mounts  # runs and stores on the shared claim
    assert "/shared/runs" in job["spec"]["entrypoint"]
    # No LoadBalancer: the head's service (dashboard, Jobs API) stays inside the cluster.
    assert cluster["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"
