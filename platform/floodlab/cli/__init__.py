"""`floodlab <verb>`: the only package that prints for people.

Verbs in the order of the work: check specs (`specs`), make and convert data (`data`),
train and sweep (`training`), evaluate and map scenes (`results`), run on a cluster
(`cluster`), and the main job end to end (`demo`). Every user-fixable error
(FloodlabError) is printed as a paragraph on stderr and exits 2, without a traceback.
"""

from floodlab.cli import cluster, data, demo, results, specs, training  # noqa: F401  (verbs)
from floodlab.cli.app import main

__all__ = ["main"]
