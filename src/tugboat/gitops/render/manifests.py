"""Turning YAML and JSON text into Kubernetes manifests, the way Argo CD's repo-server does.

Every tool ends here: files of a directory app, Jsonnet output, ``kustomize build`` and ``helm template``
output. The rules follow Argo CD:

- multi-document YAML, with empty documents skipped; a ``.json`` file holds exactly one object;
- each document must be an object with a ``kind``; an object whose ``items`` is a list (``List``,
  ``ConfigMapList``, …) is replaced by its items, and one whose ``items`` is ``null`` is dropped;
- in a directory app, a YAML file whose *first* document does not parse as a manifest is skipped (with a
  warning) unless the file contains ``apiVersion:``, ``kind:`` and ``metadata:`` - so unrelated YAML such as
  ``values.yaml`` can sit beside manifests - and a later bad document fails the whole file;
- label and annotation values must be strings (Argo CD fails on them when it adds tracking).

Scalars are read as Go's YAML library reads them for Kubernetes: dates stay strings (PyYAML would make
``datetime`` objects), non-string keys become strings. Parsing uses libyaml (``CSafeLoader``). A document
whose aliases would expand beyond a bound is refused, so a "billion laughs" file cannot exhaust memory
when manifests are serialized later. Errors name the file (or tool), the document and the line, never
the content, which may hold secrets.

These functions run inside the render worker pool; ``dump`` packs their result into JSON bytes, which
crosses the process boundary cheaply and comes back as fresh, unshared dicts.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterator
from typing import Any

import orjson
import yaml
from yaml import nodes

from tugboat.gitops.errors import RenderError

MAX_NODES_PER_DOCUMENT = 5_000_000
_MARKERS = ("apiVersion:", "kind:", "metadata:")
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(yaml.CSafeLoader):
    """libyaml's safe loader with Go/Kubernetes scalar rules: timestamps stay strings."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}


def _construct_timestamp(loader: _Loader, node: nodes.Node) -> str:
    """An explicit ``!!timestamp`` stays a string too."""
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor(_TIMESTAMP, _construct_timestamp)


class _ParseError(RenderError):
    """The YAML text itself is malformed (as opposed to a well-formed document that is not a manifest)."""


def decode(data: bytes, *, where: str) -> str:
    """Bytes read from a file or a tool as text (UTF-8, with or without a byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderError(f"{where}: not valid UTF-8 text (byte {exc.start})") from None


def load_yaml(text: str, *, where: str, lenient: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The manifests in a YAML stream, and warnings.

    ``lenient`` applies the directory-app rule for files that are not manifests at all (see the module
    docstring); without it every non-empty document must be a manifest.
    """
    manifests: list[dict[str, Any]] = []
    seen_document = False
    skipped = [f"skipped {where}: it is not a Kubernetes manifest"]
    try:
        for line, document in _documents(text, where=where):
            if document is None:
                continue
            location = f"{where} (document starting at line {line})"
            if not _is_manifest(document):
                if lenient and not seen_document and not _looks_like_manifest(text):
                    return [], skipped
                raise RenderError(f"{location}: {_not_a_manifest(document)}")
            seen_document = True
            manifests.extend(_expand(document, where=location))
    except _ParseError:
        if lenient and not seen_document and not _looks_like_manifest(text):
            return [], skipped
        raise
    return manifests, []


def load_document(text: str, *, where: str) -> Any:
    """The single YAML document in ``text`` (a values or kustomization file), with Kubernetes scalar rules."""
    documents = [document for _, document in _documents(text, where=where)]
    if len(documents) > 1:
        raise RenderError(f"{where}: expected one YAML document, found {len(documents)}")
    return documents[0] if documents else None


def _looks_like_manifest(text: str) -> bool:
    return all(marker in text for marker in _MARKERS)


def load_json(text: str, *, where: str) -> list[dict[str, Any]]:
    """The manifest in a ``.json`` file: exactly one object (a ``List`` gives its items)."""
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "trailing" in exc.msg or "after document" in exc.msg:
            raise RenderError(
                f"{where}: found more than one JSON value; only one object is allowed in a JSON file"
            ) from None
        raise RenderError(f"{where}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not _is_manifest(document):
        raise RenderError(f"{where}: {_not_a_manifest(document)}")
    return _expand(document, where=where)


def from_value(value: Any, *, where: str) -> list[dict[str, Any]]:
    """Manifests from an evaluated value (Jsonnet output): one object, a list of them, or ``null``."""
    if value is None:
        return []
    documents = value if isinstance(value, list) else [value]
    manifests: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        location = f"{where} (item {index})" if isinstance(value, list) else where
        if not _is_manifest(document):
            raise RenderError(f"{location}: {_not_a_manifest(document)}")
        manifests.extend(_expand(document, where=location))
    return manifests


def dump(manifests: list[dict[str, Any]]) -> bytes:
    """``manifests`` as one JSON array (non-string keys become strings, as Go's YAML-to-JSON does)."""
    try:
        return orjson.dumps(manifests, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        raise RenderError(f"a manifest holds a value that is not representable as JSON: {exc}") from None


def unpack(blob: bytes) -> list[dict[str, Any]]:
    """The manifests ``dump`` packed (in the worker), as fresh dicts (in the controller)."""
    unpacked: list[dict[str, Any]] = orjson.loads(blob)
    return unpacked


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return dict.fromkeys(sorted(map(str, value)))
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    raise TypeError(f"unsupported type {type(value).__name__}")


def _documents(text: str, *, where: str) -> Iterator[tuple[int, Any]]:
    """Each document of a YAML stream with the line (1-based) it starts on."""
    loader = _Loader(text)
    has_anchors = "&" in text  # without anchors there are no aliases, so nothing to expand
    try:
        while True:
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                if node is None:  # pragma: no cover - check_node said there is one
                    return
                if has_anchors:
                    _check_size(node, where=where)
                yield node.start_mark.line + 1, loader.construct_document(node)
            except yaml.MarkedYAMLError as exc:
                raise _ParseError(_yaml_problem(exc, where=where)) from None
            except yaml.YAMLError as exc:
                raise _ParseError(f"{where}: invalid YAML: {exc}") from None
            except RecursionError:
                raise _ParseError(f"{where}: a document is nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.MarkedYAMLError, *, where: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    position = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = exc.problem or "invalid YAML"
    context = f" ({exc.context})" if exc.context else ""
    return f"{where}: {position}{problem}{context}"


def _check_size(root: nodes.Node, *, where: str) -> None:
    """Refuse a document whose aliases expand to more than ``MAX_NODES_PER_DOCUMENT`` nodes, or loop."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[nodes.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = _children(node)
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_NODES_PER_DOCUMENT:
                raise RenderError(
                    f"{where}: a document expands to more than {MAX_NODES_PER_DOCUMENT} values "
                    "(YAML aliases nested too deeply)"
                )
            sizes[key] = total
            active.discard(key)
            continue
        if key in sizes:
            continue
        if key in active:
            raise RenderError(f"{where}: a YAML alias refers to the node that contains it")
        if isinstance(node, nodes.ScalarNode):
            sizes[key] = 1
            continue
        active.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in active:
                raise RenderError(f"{where}: a YAML alias refers to the node that contains it")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: nodes.Node) -> list[nodes.Node]:
    if isinstance(node, nodes.SequenceNode):
        return list(node.value)
    if isinstance(node, nodes.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


def _is_manifest(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("kind"), str) and document["kind"] != ""


def _not_a_manifest(document: Any) -> str:
    if isinstance(document, dict):
        return "not a Kubernetes object: 'kind' is missing"
    if isinstance(document, list):
        return "not a Kubernetes object: a list, where an object was expected"
    return f"not a Kubernetes object: a {_type_name(document)}, where an object was expected"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _expand(document: dict[str, Any], *, where: str) -> list[dict[str, Any]]:
    """One manifest, the items of a list object, or nothing for a list whose ``items`` is ``null``."""
    if "items" in document:
        items = document["items"]
        if isinstance(items, list):
            result = []
            for index, item in enumerate(items):
                location = f"{where}, items[{index}]"
                if not _is_manifest(item):
                    raise RenderError(f"{location}: {_not_a_manifest(item)}")
                _validate(item, where=location)
                result.append(item)
            return result
        if items is None and "spec" not in document and "status" not in document:
            return []
    _validate(document, where=where)
    return [document]


def _validate(manifest: dict[str, Any], *, where: str) -> None:
    """What Argo CD (or the API server, always) would refuse later, reported now with its location."""
    kind = manifest["kind"]
    api_version = manifest.get("apiVersion")
    if not isinstance(api_version, str) or not api_version:
        raise RenderError(f"{where}: {kind} has no apiVersion")
    metadata = manifest.get("metadata")
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise RenderError(f"{where}: {kind}: metadata must be an object")
    name = metadata.get("name")
    label = f"{kind} {name!r}" if isinstance(name, str) else kind
    for field in ("name", "generateName", "namespace"):
        if field in metadata and metadata[field] is not None and not isinstance(metadata[field], str):
            raise RenderError(f"{where}: {label}: metadata.{field} must be a string")
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise RenderError(f"{where}: {label}: metadata.{field} must be an object")
        for key, value in values.items():
            if not isinstance(value, str):
                raise RenderError(
                    f"{where}: {label}: metadata.{field} contains a non-string value under key "
                    f"{str(key)!r} (quote it)"
                )


def parse_tool_output(data: bytes, what: str) -> bytes:
    """The manifests in a tool's YAML output (strict: every document must be one), packed by ``dump``.

    Runs in the worker pool.
    """
    text = decode(data, where=what)
    found, _ = load_yaml(text, where=what)
    return dump(found)
