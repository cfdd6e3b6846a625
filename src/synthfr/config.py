"""Dataclass configs (litgpt-style): one dataclass per job, a docstring under every field.

Helpers here turn configs into plain dicts and YAML and back, with errors that name the offending key,
and read the per-field docstrings so the CLI and the docs can show them.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

import yaml

T = TypeVar("T")

__all__ = ["to_dict", "from_dict", "load_yaml", "dump_yaml", "field_docs", "merge"]


def to_dict(cfg: Any) -> Any:
    """Recursively convert dataclasses (and Paths, tuples) into YAML/JSON-friendly values."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    if hasattr(cfg, "item") and callable(cfg.item) and getattr(cfg, "ndim", 1) == 0:  # numpy / torch scalar
        return cfg.item()
    return cfg


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, _where=where)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _convert(args[0], value, where)
        return value
    if origin in (list, tuple):
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        seq = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if tp is Path:
        return Path(value)
    if tp in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return tp(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any] | None, *, _where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys raise an error that lists the valid ones."""
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{_where}." if _where else ""
        raise KeyError(
            f"unknown config key(s) {', '.join(prefix + u for u in unknown)} for {cls.__name__}; "
            f"valid keys: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints.get(name, Any), value, f"{_where}.{name}" if _where else name)
    from synthfr.utils.validate import check_types

    # types are checked here, where every config is read, so a YAML `images_per_id: "3"` fails at load time
    return check_types(cls(**kwargs), _where)


def merge(cfg: T, overrides: Mapping[str, Any]) -> T:
    """Return a copy of ``cfg`` with ``overrides`` (dotted keys allowed: ``{"optim.lr": 0.1}``) applied."""
    base = to_dict(cfg)
    for key, value in overrides.items():
        node = base
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return from_dict(type(cfg), base)


def load_yaml(path: str | Path, cls: type[T] | None = None) -> Any:
    """Read a YAML file; with ``cls``, build that dataclass from it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist; pass the path of a YAML file")
    with open(path) as f:
        try:
            data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            from synthfr.errors import UsageError

            raise UsageError(f"config file {path}{where}: {problem}; fix the YAML (plain YAML only: tags such as "
                             "!!python/object are refused)") from None
    return from_dict(cls, data) if cls is not None else data


def dump_yaml(obj: Any, path: str | Path | None = None) -> str:
    """Serialise a dataclass or mapping to YAML (and write it when ``path`` is given)."""
    text = yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field of a dataclass (attribute docstrings, as litgpt does)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    docs: dict[str, str] = {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    for node, nxt in zip(body, body[1:] + [None]):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs
