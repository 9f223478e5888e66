"""From AnalysisTemplates to an AnalysisRun spec: template lookup, flattening, args and substitution.

A Rollout names templates (``templates: [{templateName, clusterScope}]``), and templates may name more
templates; Argo Rollouts fetches them all (each once), concatenates their metrics, args, ``dryRun`` and
``measurementRetention`` rules, overlays the Rollout's own args, and creates one AnalysisRun with the
result. Metrics mention args as ``{{args.name}}`` (whitespace inside the braces allowed); the run
controller substitutes them at measure time - secret values then, never stored. Every way this can go
wrong is an :class:`AnalysisSpecError` whose text says what (upstream's wording where users know it).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tugboat.kube import errors as kube_errors
from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MAX_NESTING = 10


class AnalysisSpecError(Exception):
    """An analysis spec that cannot be turned into measurements (the text says why)."""


# ------------------------------------------------------------------------------------ templates


async def fetch(client: Client, namespace: str, refs: Iterable[Mapping[str, Any]]) -> list[Obj]:
    """The templates ``refs`` name, nested ones included, each once: the AnalysisTemplates, then the
    ClusterAnalysisTemplates, each in reference order (depth first), the order upstream flattens them in."""
    found: list[Obj] = []
    seen: set[tuple[str, str]] = set()
    await _fetch_into(client, namespace, list(refs), found, seen, depth=0)
    cluster_kind = crds.CLUSTERANALYSISTEMPLATE.kind
    return [t for t in found if t.get("kind") != cluster_kind] + [
        t for t in found if t.get("kind") == cluster_kind
    ]


async def _fetch_into(
    client: Client,
    namespace: str,
    refs: list[Mapping[str, Any]],
    found: list[Obj],
    seen: set[tuple[str, str]],
    *,
    depth: int,
) -> None:
    if depth > MAX_NESTING:
        raise AnalysisSpecError(f"analysis templates nest deeper than {MAX_NESTING} levels")
    for ref in refs:
        name = str(ref.get("templateName") or "")
        cluster = bool(ref.get("clusterScope"))
        kind = crds.CLUSTERANALYSISTEMPLATE if cluster else crds.ANALYSISTEMPLATE
        key = (kind.kind, name)
        if not name:
            raise AnalysisSpecError("an analysis template reference has no templateName")
        if key in seen:
            continue
        seen.add(key)
        try:
            template = await client.get(kind, name, None if cluster else namespace)
        except kube_errors.ApiError as exc:
            if exc.not_found:
                raise AnalysisSpecError(f'{kind.kind} "{name}" not found') from exc
            raise
        template.setdefault("kind", kind.kind)
        found.append(template)
        nested = (template.get("spec") or {}).get("templates") or []
        if nested:
            await _fetch_into(client, namespace, list(nested), found, seen, depth=depth + 1)


def flatten(templates: Iterable[Mapping[str, Any]]) -> Obj:
    """One template spec from several: metrics, args, dryRun and measurementRetention concatenated;
    two metrics of one name, or one arg given two different values, are errors."""
    metrics: list[Obj] = []
    args: list[Obj] = []
    dry_run: list[Obj] = []
    retention: list[Obj] = []
    for template in templates:
        spec = template.get("spec") or {}
        for metric in spec.get("metrics") or []:
            if any(m.get("name") == metric.get("name") for m in metrics):
                raise AnalysisSpecError(f"two metrics have the same name '{metric.get('name')}'")
            metrics.append(copy.deepcopy(metric))
        for arg in spec.get("args") or []:
            _add_arg(args, arg)
        for rule in spec.get("dryRun") or []:
            if any(r.get("metricName") == rule.get("metricName") for r in dry_run):
                raise AnalysisSpecError(
                    f"two Dry-Run metric rules have the same name '{rule.get('metricName')}'"
                )
            dry_run.append(copy.deepcopy(rule))
        for rule in spec.get("measurementRetention") or []:
            if any(r.get("metricName") == rule.get("metricName") for r in retention):
                raise AnalysisSpecError(
                    f"two Measurement Retention metric rules have the same name '{rule.get('metricName')}'"
                )
            retention.append(copy.deepcopy(rule))
    return {"metrics": metrics, "args": args, "dryRun": dry_run, "measurementRetention": retention}


def _add_arg(args: list[Obj], arg: Mapping[str, Any]) -> None:
    """Upstream's rule: a value given twice must be the same; an arg with a value keeps it; an arg
    without one takes the later declaration whole (unless that one has nothing to give)."""
    index = next((i for i, a in enumerate(args) if a.get("name") == arg.get("name")), None)
    if index is None:
        args.append(copy.deepcopy(dict(arg)))
        return
    previous = args[index]
    if previous.get("value") is not None:
        if arg.get("value") is not None and previous["value"] != arg["value"]:
            raise AnalysisSpecError(
                f"Argument `{arg.get('name')}` specified multiple times with different values: "
                f"'{previous['value']}', '{arg['value']}'"
            )
        return
    if arg.get("value") is not None or arg.get("valueFrom") is not None:
        args[index] = copy.deepcopy(dict(arg))


def merge_args(
    incoming: Iterable[Mapping[str, Any]], template_args: Iterable[Mapping[str, Any]]
) -> list[Obj]:
    """The template's args with the caller's values laid over them (names the template does not
    declare are ignored, as upstream does); an arg left without value is an error."""
    merged = [copy.deepcopy(dict(a)) for a in template_args]
    for arg in incoming:
        target = next((a for a in merged if a.get("name") == arg.get("name")), None)
        if target is None:
            continue
        if arg.get("value") is not None:
            target["value"] = arg["value"]
            target.pop("valueFrom", None)
        elif arg.get("valueFrom") is not None:
            target["valueFrom"] = copy.deepcopy(arg["valueFrom"])
            target.pop("value", None)
    for arg in merged:
        if arg.get("value") is None and arg.get("valueFrom") is None:
            raise AnalysisSpecError(f"args.{arg.get('name')} was not resolved")
    return merged


def merge_rules(
    incoming: Iterable[Mapping[str, Any]],
    template_rules: Iterable[Mapping[str, Any]],
    *,
    what: str = "Dry-Run",
) -> list[Obj]:
    """dryRun / measurementRetention rules: the caller's first, the template's after; two rules for one
    metricName are an error, as upstream (``what``: ``Dry-Run`` or ``Measurement Retention``)."""
    rules: list[Obj] = []
    for rule in [*incoming, *template_rules]:
        if any(r.get("metricName") == rule.get("metricName") for r in rules):
            raise AnalysisSpecError(f"two {what} metric rules have the same name '{rule.get('metricName')}'")
        rules.append(copy.deepcopy(dict(rule)))
    return rules


def run_spec(
    templates: Iterable[Mapping[str, Any]],
    *,
    args: Iterable[Mapping[str, Any]] = (),
    dry_run: Iterable[Mapping[str, Any]] = (),
    measurement_retention: Iterable[Mapping[str, Any]] = (),
) -> Obj:
    """The ``spec`` of an AnalysisRun made from ``templates`` with the caller's args and rules."""
    flat = flatten(templates)
    if not flat["metrics"]:
        raise AnalysisSpecError("no metrics specified")
    spec: Obj = {"metrics": flat["metrics"], "args": merge_args(args, flat["args"])}
    rules = merge_rules(dry_run, flat["dryRun"])
    if rules:
        spec["dryRun"] = rules
    retention = merge_rules(measurement_retention, flat["measurementRetention"], what="Measurement Retention")
    if retention:
        spec["measurementRetention"] = retention
    if not spec["args"]:
        spec.pop("args")
    return spec


# ------------------------------------------------------------------------------------ substitution


def substitute(value: Any, variables: Mapping[str, str]) -> Any:
    """``value`` (any JSON) with every ``{{name}}`` in its strings - object keys included, as upstream
    substitutes the whole JSON text - replaced from ``variables``; a tag with no variable is an error
    (``failed to resolve {{args.x}}``)."""
    if isinstance(value, str):
        return _substitute_text(value, variables)
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {_substitute_text(str(k), variables): substitute(v, variables) for k, v in value.items()}
    return value


def _substitute_text(text: str, variables: Mapping[str, str]) -> str:
    if "{{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        tag = match.group(1).strip()
        if tag not in variables:
            raise AnalysisSpecError(f"failed to resolve {{{{{match.group(1)}}}}}")
        return variables[tag]

    return _TAG.sub(replace, text)


def arg_variables(
    args: Iterable[Mapping[str, Any]], *, secrets: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``{"args.name": value}`` for substitution; args from a Secret (which win over ``value``, as
    upstream) take their value from ``secrets`` (by arg name), or a placeholder when only the shape
    matters (validation); any other arg without a value was not supplied."""
    out: dict[str, str] = {}
    for arg in args:
        name = str(arg.get("name"))
        if ((arg.get("valueFrom") or {}).get("secretKeyRef")) is not None:
            out[f"args.{name}"] = (secrets or {}).get(name, "temp-for-secret")
        elif arg.get("value") is not None:
            out[f"args.{name}"] = str(arg["value"])
        else:
            raise AnalysisSpecError(f'argument "{name}" was not supplied')
    return out


def spec_fingerprint(spec: Mapping[str, Any]) -> str:
    """A stable text of a run spec, to tell an identical existing run from a different one."""
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))
