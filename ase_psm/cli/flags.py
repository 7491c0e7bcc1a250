"""Command-line flags built from a settings dataclass, so that names, defaults, choices and help
have one source: the dataclass.

Each field becomes ``--field-name`` (or the ``flag`` in its ``field(metadata=...)``) with the field's
default; its type from the annotation (``X | None`` gives X, several types give a string for the
dataclass to parse, ``dict`` a JSON object); choices from a ``Literal`` annotation or the ``choices``
in the field's metadata; help from the attribute docstring under the field. A field that accepts a
bool is a switch: ``--field-name`` sets True when the default is False, else ``--no-field-name``
sets False.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
import textwrap
import types
import typing
from typing import Any, Literal, TypeVar

Config = TypeVar("Config")


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per field of the dataclass ``cls`` (but those in ``skip``) to ``parser``."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        kind, choices = _argument_type(hints[field.name], f"{cls.__name__}.{field.name}")
        choices = field.metadata.get("choices", choices)
        help_text = _plain(docs.get(field.name, ""))
        if kind is bool:
            switch = "--" + ("" if default is False else "no-") + field.name.replace("_", "-")
            parser.add_argument(field.metadata.get("flag", switch), dest=field.name, action="store_const",
                                const=default is False, default=default,
                                help=f"sets {field.name} to {default is False}: {help_text}")
            continue
        shown = "" if default is None or default == {} else f" (default: {default})"
        parser.add_argument(field.metadata.get("flag", "--" + field.name.replace("_", "-")), dest=field.name,
                            type=kind, choices=choices, default=default, help=help_text + shown)


def config_from_flags(cls: type[Config], args: argparse.Namespace) -> Config:
    """The dataclass ``cls`` from the parsed flags that :func:`add_config_flags` added."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})  # type: ignore[arg-type]


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string literal under each field), on one line each."""
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    assert isinstance(node, ast.ClassDef)
    docs = {}
    for statement, following in zip(node.body, node.body[1:]):
        if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)):
            docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def json_object(text: str) -> dict:
    """A JSON object given on the command line, e.g. '{"num_layers": 2}'."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"num_layers\": 2}}', got {text!r}")
    return value


def _argument_type(annotation: Any, name: str) -> tuple[Any, tuple | None]:
    """(type, choices) of a flag for a field annotated ``annotation``; bool for a switch."""
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    members = tuple(member for member in members if member is not type(None))
    if bool in members:
        return bool, None
    if len(members) == 1 and typing.get_origin(members[0]) is Literal:
        choices = typing.get_args(members[0])
        return type(choices[0]), choices
    if len(members) == 1 and members[0] in (int, float, str):
        return members[0], None
    if len(members) == 1 and members[0] is dict:
        return json_object, None
    if all(member in (int, float, str) for member in members):
        return str, None  # e.g. float | str: the dataclass parses the text
    raise TypeError(f"no command-line flag for {name} of type {annotation}: skip it, or give it a simpler type")


def _plain(doc: str) -> str:
    """A docstring as plain help text: Sphinx roles and double backquotes dropped, % escaped for argparse."""
    doc = re.sub(r":\w+:`~([\w.]+)`", lambda match: match.group(1).rsplit(".", 1)[-1], doc)
    doc = re.sub(r":\w+:`([^`]+)`", r"\1", doc)
    return doc.replace("``", "").replace("%", "%%")


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)
