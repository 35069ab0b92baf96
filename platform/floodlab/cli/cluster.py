"""Verbs that run on a Ray cluster: `submit`, `jobs`, `logs`, `stop`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from floodlab.cli.app import main
from floodlab.cli.common import (
    FOLDER,
    jobs_address_option,
    overrides_option,
    user_errors,
)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--tune", is_flag=True, help="Run the spec's sweep (floodlab tune) instead of one training run."
)
@overrides_option("trainer.epochs=20 (passed on to the job)")
@jobs_address_option
@click.option(
    "--project-dir",
    default=None,
    type=FOLDER,
    help="Project folder to upload (default: found from here).",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Stream the job's output until it ends; exit 1 unless it succeeds.",
)
@user_errors
def submit(
    spec: str,
    tune: bool,
    overrides: tuple[str, ...],
    address: str | None,
    project_dir: Path | None,
    follow: bool,
) -> None:
    """Validate SPEC here, then run `floodlab train|tune` on it as a Ray job on a cluster."""
    from floodlab import cluster

    job = cluster.submit(spec, overrides, tune=tune, address=address, project_dir=project_dir)
    for warning in job.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"submitted {job.job_id} to {job.address}")
    click.echo(f"  runs: {job.entrypoint}")
    if not follow:
        click.echo(f"follow it with: floodlab logs {job.job_id} --follow --address {job.address}")
        return
    for chunk in cluster.follow_logs(job.job_id, job.address):
        click.echo(chunk, nl=False)
    status = cluster.wait_for_job(job.job_id, job.address, timeout_s=60)
    click.echo(f"job {job.job_id}: {status}")
    if status != "SUCCEEDED":
        sys.exit(1)


@main.command()
@jobs_address_option
@user_errors
def jobs(address: str | None) -> None:
    """List the cluster's jobs: id, status, start time (UTC), experiment."""
    from floodlab import cluster

    rows = cluster.list_jobs(address)
    if not rows:
        click.echo("no jobs")
    for r in rows:
        click.echo(f"{r.job_id:<44} {r.status:<10} {r.started:<20} {r.name or r.entrypoint}")


@main.command()
@click.argument("job")
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the job ends.")
@jobs_address_option
@user_errors
def logs(job: str, follow: bool, address: str | None) -> None:
    """Print the output of JOB."""
    from floodlab import cluster

    if follow:
        for chunk in cluster.follow_logs(job, address):
            click.echo(chunk, nl=False)
    else:
        click.echo(cluster.job_logs(job, address), nl=False)


@main.command()
@click.argument("job")
@jobs_address_option
@user_errors
def stop(job: str, address: str | None) -> None:
    """Stop JOB on the cluster."""
    from floodlab import cluster

    stopped = cluster.stop_job(job, address)
    click.echo(f"stopping {job}" if stopped else f"{job} had already finished")
