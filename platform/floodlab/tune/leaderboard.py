"""The sweep leaderboard that `floodlab trials` prints: best trial first, short param names."""

from __future__ import annotations

from typing import Any

from floodlab.specs.tune import TuneSpec
from floodlab.tune.results import TrialRecord, ranked


def short_names(paths: list[str]) -> dict[str, str]:
    """The shortest unique dotted suffix of each path (loss.seg.dice -> dice)."""
    names: dict[str, str] = {}
    for path in paths:
        parts = path.split(".")
        for k in range(1, len(parts) + 1):
            cand = ".".join(parts[-k:])
            if sum(1 for p in paths if p == cand or p.endswith("." + cand)) == 1:
                names[path] = cand
                break
        else:
            names[path] = path
    return names


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def leaderboard(
    records: list[TrialRecord], tune: TuneSpec, top: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """The leaderboard table: header and rows, best trial first.

    Columns: rank, trial, status, epochs, every objective (final value, and best over
    the epochs), then the searched parameters by their shortest unique name.
    """
    objectives = [o.metric for o in tune.objectives]
    params = list(tune.space)
    short = short_names(params)
    header = [
        "#",
        "trial",
        "status",
        "epochs",
        *objectives,
        *[f"best {m}" for m in objectives],
        *[short[p] for p in params],
    ]
    rows: list[list[str]] = []
    for i, r in enumerate(ranked(records, tune)[:top], start=1):
        rows.append(
            [
                str(i),
                r.trial_id,
                r.status,
                str(r.epochs),
                *[_fmt(r.final.get(m)) for m in objectives],
                *[_fmt(r.best.get(m)) for m in objectives],
                *[_fmt(r.params.get(p)) for p in params],
            ]
        )
    return header, rows
