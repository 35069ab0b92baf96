"""The `floodlab` command group; the verbs register themselves from their modules."""

from __future__ import annotations

import click

from floodlab import __version__

# Verb modules in the order of the work; `floodlab --help` lists their verbs in this order.
FLOW = ("specs", "data", "training", "results", "cluster", "demo")


class FlowGroup(click.Group):
    """A group that lists its verbs in the order of the work, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Verb names, by their module's place in `FLOW`, then in declaration order."""

        def place(name: str) -> int:
            module = getattr(self.commands[name].callback, "__module__", "")
            group = module.rsplit(".", 1)[-1]
            return FLOW.index(group) if group in FLOW else len(FLOW)

        return sorted(self.commands, key=place)  # stable: declaration order within a module


@click.group(cls=FlowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="floodlab")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show floodlab's INFO logs and Ray's own logs, notices and worker output "
    "(hidden by default: Ray keeps them in /tmp/ray/session_latest/logs).",
)
def main(verbose: bool) -> None:
    """floodlab: experiments and sweeps for Earth-observation flood mapping on Ray."""
    from floodlab.cli.output import configure_output

    configure_output(verbose)
