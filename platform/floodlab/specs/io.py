"""Load, override, dump and hash experiment specs; turn every problem into `file: path: message`."""

from __future__ import annotations

import copy
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
from floodlab.specs.loss import resolve_loss
from floodlab.specs.model import MODEL_KINDS, family_spec
from floodlab.specs.paths import closest, fields_of, set_path
from floodlab.specs.tracking import SECRET_ERROR
from floodlab.specs.tune import PARAM_TYPES

_LEADING_PATH = re.compile(r"^([a-z_][a-z0-9_]*(?:\.[A-Za-z0-9_.]+)*): (.*)$", re.S)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping gives the same key twice (plain YAML would silently keep the last value).

    Attributes:
        key: the repeated key.
        where: dotted path of the mapping holding it ("" at the top level).
        first_line: 1-based line of the key's first occurrence.
    """

    def __init__(self, key: Any, where: str, first: yaml.Mark, again: yaml.Mark):
        self.key = key
        self.where = where
        self.first_line = first.line + 1
        super().__init__(
            problem=f"duplicate key {key!r} (first given on line {self.first_line})",
            problem_mark=again,
        )


class SpecLoader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (merge keys `<<` excepted)."""

    def construct_document(self, node: yaml.Node) -> Any:
        """Check the whole node tree for duplicate keys, then construct it safely."""
        self._check_duplicates(node, "", set())
        return super().construct_document(node)

    def _check_duplicates(self, node: yaml.Node, where: str, seen_nodes: set[int]) -> None:
        if id(node) in seen_nodes:  # an alias seen before (also guards recursive anchors)
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Mark] = {}
            for key_node, value_node in node.value:
                name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    key = self.construct_object(key_node)
                    if key in first:
                        raise DuplicateKeyError(key, where, first[key], key_node.start_mark)
                    first[key] = key_node.start_mark
                child = f"{where}.{name}" if where else str(name)
                self._check_duplicates(value_node, child, seen_nodes)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._check_duplicates(item, f"{where}.{i}" if where else str(i), seen_nodes)


def _not_text_reason(raw: bytes) -> str:
    """Why `raw` is not UTF-8 YAML text, in the words a user recognises."""
    if raw.startswith(b"\x89PNG"):
        return "it is a PNG image"
    head = raw[:64]
    # UTF-16 starts with a byte-order mark, or (ASCII text without one) has every other byte 0.
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or any(head[0::2]) != any(head[1::2]):
        return "it looks like UTF-16 text; re-save it as UTF-8"
    return "it holds binary data"


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b.c=value`; the value is read as YAML (so 0.5, true, [1, 2] get their types)."""
    if "=" not in text:
        raise SpecError([f"--set {text}: expected dotted.path=value, e.g. --set loss.seg.dice=0.5"])
    path, raw = text.split("=", 1)
    path = path.strip()
    if not path or any(not part for part in path.split(".")):
        raise SpecError([f"--set {text}: '{path}' is not a dotted path"])
    try:
        value = yaml.load(raw, Loader=SpecLoader) if raw.strip() else None
    except DuplicateKeyError as e:
        raise SpecError([f"--set {text}: duplicate key {e.key!r} in the value"]) from None
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
    """Read a YAML mapping with the safe loader.

    Raises:
        SpecError: for a missing or unreadable file, a file that is not UTF-8 text, bad
            syntax, a key given twice in one mapping, or a document that is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        hint = "" if p.suffix in (".yaml", ".yml") else " (specs are .yaml files)"
        raise SpecError(
            [f"{path}: no such file{hint}; list the available specs with `ls experiments/`"]
        )
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise SpecError([f"{path}: cannot be read ({e.strerror}); check its permissions"]) from None
    try:
        text = raw.decode("utf-8")
        if "\x00" in text:  # valid UTF-8 but not text (e.g. UTF-16 without a BOM)
            raise UnicodeDecodeError("utf-8", raw, text.index("\x00"), len(raw), "NUL byte")
    except UnicodeDecodeError:
        raise SpecError(
            [
                f"{path}: not a UTF-8 YAML text file ({_not_text_reason(raw)}); "
                "a spec is a YAML text file saved as UTF-8, such as the ones in experiments/"
            ]
        ) from None
    try:
        data = yaml.load(text, Loader=SpecLoader)
    except DuplicateKeyError as e:
        mark = e.problem_mark
        line = mark.line + 1 if mark else "?"
        key = f"{e.where}.{e.key}" if e.where else str(e.key)
        raise SpecError(
            [
                f"{path}: line {line}: {key}: duplicate key {e.key!r} (first given on line "
                f"{e.first_line}); YAML would silently keep only the last value, so remove one"
            ]
        ) from None
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
            and e["type"] not in ("missing", "extra_forbidden", SECRET_ERROR)
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


def with_loss_defaults(data: dict[str, Any], overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Raw spec data with the family's default weights written into every loss section
    that names no weight (`floodlab.specs.loss.resolve_loss`).

    `load_spec` applies `--set` overrides after this, so an override edits the spec as
    the file resolves it: ``--set loss.seg.dice=0.5`` on a spec whose file leaves
    ``loss.seg`` to the family changes the Dice weight and keeps the family's other
    segmentation weights, as a sweep's ``tune.space`` path does; an override of a whole
    section (``--set 'loss.seg={dice: 1}'``) names exactly its weights.

    Args:
        data: the spec file's data (not changed).
        overrides: the `--set` overrides that follow; the family is the one they leave
            (an override may change ``model.kind``).
    """
    probe = apply_overrides(copy.deepcopy(data), overrides)
    model = probe.get("model")
    kind = model.get("kind") if isinstance(model, dict) else None
    loss = data.get("loss")
    if kind not in MODEL_KINDS or not (loss is None or isinstance(loss, dict)):
        return data
    return {**data, "loss": resolve_loss(loss, family_spec(kind).losses)}


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentSpec:
    """Load a YAML spec, apply `--set` overrides, validate.

    Overrides edit the spec as its file resolves it: loss sections the file leaves to the
    family hold the family's default weights before the overrides apply
    (`with_loss_defaults`).

    Raises:
        SpecError: with one `file: dotted.path: message` line per problem.
    """
    data = read_yaml(path)
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(with_loss_defaults(data, overrides), overrides)
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
