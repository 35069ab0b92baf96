"""Load, override, dump and hash experiment specs; turn every problem into `file: path: message`."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from floodlab.errors import SpecError
from floodlab.specs.experiment import ExperimentSpec
from floodlab.specs.model import MODEL_KINDS
from floodlab.specs.paths import closest, fields_of, set_path
from floodlab.specs.tune import PARAM_TYPES

_LEADING_PATH = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_.]+)*): (.*)$", re.S)


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b.c=value`; the value is read as YAML (so 0.5, true, [1, 2] get their types)."""
    if "=" not in text:
        raise SpecError([f"--set {text}: expected dotted.path=value, e.g. --set loss.seg.dice=0.5"])
    path, raw = text.split("=", 1)
    path = path.strip()
    if not path or any(not part for part in path.split(".")):
        raise SpecError([f"--set {text}: '{path}' is not a dotted path"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply `--set` overrides to raw spec data (validation happens after, typed by the schema)."""
    for text in overrides:
        path, value = parse_override(text)
        if path.startswith("tune.space."):
            # Space keys are dotted spec paths themselves: the longest existing key wins,
            # e.g. tune.space.loss.seg.dice.high=2 sets `high` of key `loss.seg.dice`.
            rest = path[len("tune.space.") :]
            space = data.setdefault("tune", {}).setdefault("space", {})
            key = max(
                (k for k in space if rest == k or rest.startswith(k + ".")), key=len, default=rest
            )
            if key == rest:
                space[key] = value
            else:
                set_path(space[key], rest[len(key) + 1 :], value)
            continue
        set_path(data, path, value)
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; SpecError for missing files and bad syntax."""
    p = Path(path)
    if not p.is_file():
        hint = "" if p.suffix in (".yaml", ".yml") else " (specs are .yaml files)"
        raise SpecError(
            [f"{path}: no such file{hint}; list the available specs with `ls experiments/`"]
        )
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise SpecError([f"{path}: {where}: YAML syntax error: {e.problem}"]) from None
    except yaml.YAMLError as e:
        raise SpecError([f"{path}: YAML error: {e}"]) from None
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"{path}: expected a mapping of spec sections (name, data, model, ...), got {type(data).__name__}"
            ]
        )
    return data


def _dotted(loc: Sequence[Any]) -> str:
    """pydantic error location -> dotted path, without union tags (model.flora.x -> model.x)."""
    parts: list[str] = []
    for i, part in enumerate(loc):
        prev = str(loc[i - 1]) if i else None
        if prev == "model" and part in MODEL_KINDS:
            continue
        if i >= 2 and loc[i - 2] == "space" and part in PARAM_TYPES:
            continue
        if prev == "teacher" or part in ("function-after", "function-before"):
            pass
        parts.append(str(part))
    return ".".join(parts)


def format_errors(err: ValidationError, data: dict[str, Any], source: str) -> list[str]:
    """One `source: dotted.path: message` line per pydantic error, with a suggestion for typos."""
    lines: list[str] = []
    for e in err.errors():
        loc = tuple(e["loc"])
        # Drop the union tags pydantic adds so `fields_of` can walk the raw data.
        clean = tuple(
            p
            for i, p in enumerate(loc)
            if not (i and str(loc[i - 1]) == "model" and p in MODEL_KINDS)
        )
        clean = tuple(
            p
            for i, p in enumerate(clean)
            if not (i >= 2 and clean[i - 2] == "space" and p in PARAM_TYPES)
        )
        path = _dotted(loc) or "(spec)"
        msg = e["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if e["type"] == "extra_forbidden":
            valid = fields_of(ExperimentSpec, data, clean[:-1]) or []
            hint = closest(str(clean[-1]), valid)
            msg = (
                f"unknown key; did you mean '{hint}'?"
                if hint
                else f"unknown key; valid keys here: {sorted(valid)}"
            )
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            in_space = len(clean) >= 2 and clean[-2] == "space"
            tag, choices = ("type", PARAM_TYPES) if in_space else ("kind", MODEL_KINDS)
            what = "unknown" if e["type"] == "union_tag_invalid" else "missing"
            msg = f"{what} `{tag}`; choose one of {list(choices)}"
        if (
            "input" in e
            and e["type"] not in ("missing", "extra_forbidden")
            and not isinstance(e["input"], dict)
        ):
            msg = f"{msg} (got {e['input']!r})"
        # Cross-field checks name their own field first ("distill.teacher: ...").
        named = _LEADING_PATH.match(msg)
        if named and e["type"] == "value_error":
            inner = named.group(1)
            path = inner if path == "(spec)" else f"{path}.{inner}"
            msg = named.group(2)
        lines.append(f"{source}: {path}: {msg}")
    return lines


def validate_data(data: dict[str, Any], source: str = "<spec>") -> ExperimentSpec:
    """Validate raw data into an ExperimentSpec or raise SpecError listing every problem."""
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as err:
        raise SpecError(format_errors(err, data, source)) from None


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentSpec:
    """Load a YAML spec, apply `--set` overrides, validate.

    Raises:
        SpecError: with one `file: dotted.path: message` line per problem.
    """
    data = apply_overrides(read_yaml(path), overrides)
    return validate_data(data, str(path))


def spec_to_dict(spec: ExperimentSpec) -> dict[str, Any]:
    """Plain JSON-compatible dict of a spec (all defaults filled in)."""
    return spec.model_dump(mode="json")


def dump_spec(spec: ExperimentSpec) -> str:
    """The resolved spec as YAML; loading it gives an equal spec with the same hash."""
    return yaml.safe_dump(spec_to_dict(spec), sort_keys=False, default_flow_style=None, width=100)


def spec_hash(spec: ExperimentSpec) -> str:
    """Stable 12-hex-digit hash of the resolved spec (key order and formatting do not matter)."""
    canonical = json.dumps(spec_to_dict(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def with_values(
    spec: ExperimentSpec, values: dict[str, Any], source: str = "<override>"
) -> ExperimentSpec:
    """A copy of `spec` with dotted-path values applied and re-validated (used by sweeps)."""
    data = spec_to_dict(spec)
    for path, value in values.items():
        set_path(data, path, value)
    return validate_data(data, source)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ExperimentSpec (for editors and `floodlab schema`)."""
    return ExperimentSpec.model_json_schema()
