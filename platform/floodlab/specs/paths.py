"""Dotted paths into specs: list the valid ones, read and write a value, suggest a fix."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel


def _model_classes(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic model classes inside an annotation (unwraps Optional, unions, Annotated)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _model_classes(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out: list[type[BaseModel]] = []
        for arg in get_args(annotation):
            out.extend(_model_classes(arg))
        return out
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []


def leaf_paths(model: BaseModel, prefix: str = "") -> list[str]:
    """Every dotted path to a non-model value of a spec instance (follows the chosen variants)."""
    paths: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            paths.extend(leaf_paths(value, path + "."))
        else:
            paths.append(path)
    return paths


def class_paths(cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths allowed by a spec class (all variants of unions)."""
    paths: list[str] = []
    for name, field in cls.model_fields.items():
        path = f"{prefix}{name}"
        subs = _model_classes(field.annotation)
        if subs:
            for sub in subs:
                paths.extend(class_paths(sub, path + "."))
        else:
            paths.append(path)
    return sorted(set(paths))


def fields_of(cls: type[BaseModel], data: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """Field names valid at `loc` inside raw input `data` for spec class `cls`.

    Resolves discriminated unions from the raw data's `kind`/`type` tag. Returns None when
    the location is not a model (e.g. inside a dict of user keys).
    """
    current: type[BaseModel] | None = cls
    node = data
    for part in loc:
        if current is None:
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        node = node.get(part) if isinstance(node, dict) else None
        subs = _model_classes(field.annotation)
        if not subs:
            return None
        if len(subs) > 1:
            tag = None
            if isinstance(node, dict):
                tag = node.get("kind", node.get("type"))
            chosen = [s for s in subs if _tag_of(s) == tag]
            current = chosen[0] if chosen else None
        else:
            current = subs[0]
    return list(current.model_fields) if current is not None else None


def _tag_of(cls: type[BaseModel]) -> Any:
    for key in ("kind", "type"):
        f = cls.model_fields.get(key)
        if f is not None:
            return f.default
    return None


def closest(name: str, candidates: typing.Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, if any is close enough."""
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return found[0] if found else None


def get_path(data: dict[str, Any], path: str) -> Any:
    """Read a dotted path from nested dicts; KeyError names the missing part."""
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Write a dotted path into nested dicts, creating intermediate dicts."""
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value
