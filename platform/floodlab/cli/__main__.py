"""`python -m floodlab.cli`: the same as the `floodlab` command."""

from floodlab.cli import main

main()
