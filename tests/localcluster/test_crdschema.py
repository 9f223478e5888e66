"""Tests for the CRD checks and the structural-schema pipeline (prune, default, validate, list types)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tugboat.localcluster.crdschema import (
    Cause,
    Schema,
    crd_defaults,
    go_float,
    openapi_schema_for,
    validate_crd,
)

ROLLOUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["selector"],
            "properties": {
                "replicas": {"type": "integer", "format": "int32", "default": 1, "minimum": 0},
                "revisionHistoryLimit": {"type": "integer", "maximum": 100},
                "paused": {"type": "boolean"},
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "x-kubernetes-map-type": "atomic",
                },
                "strategy": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "template": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                },
                "workloadRef": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string", "enum": ["Deployment", "ReplicaSet"]},
                        "name": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": "^[a-z-]+$"},
                        "scaleDown": {"type": "string", "default": "never"},
                    },
                },
                "maxSurge": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "analysis": {
                    "type": "object",
                    "properties": {
                        "successfulRunHistoryLimit": {"type": "integer", "default": 5},
                        "args": {
                            "type": "array",
                            "maxItems": 3,
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "value": {"type": "string", "default": ""},
                                },
                            },
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                        },
                    },
                },
                "steps": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "setWeight": {"type": "integer", "format": "int32"},
                            "pause": {
                                "type": "object",
                                "properties": {"duration": {"x-kubernetes-int-or-string": True}},
                            },
                        },
                    },
                },
                "finalizers": {
                    "type": "array",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "set",
                },
                "restartAt": {"type": "string", "format": "date-time", "nullable": True},
                "annotations": {"type": "object", "additionalProperties": True},
            },
        },
        "status": {
            "type": "object",
            "properties": {
                "phase": {"type": "string"},
                "replicas": {"type": "integer"},
                "conditions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
                    },
                },
            },
        },
    },
}


def rollout_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "rollouts.argoproj.io"},
        "spec": {
            "group": "argoproj.io",
            "names": {"kind": "Rollout", "plural": "rollouts", "shortNames": ["ro"], "categories": ["all"]},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": copy.deepcopy(ROLLOUT_SCHEMA)},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.HPAReplicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                }
            ],
        },
    }


def rollout(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "demo"}}, **spec},
    }


@pytest.fixture
def schema() -> Schema:
    return Schema(copy.deepcopy(ROLLOUT_SCHEMA))


# ============================================================================ pruning


def test_prune_drops_unknown_spec_field(schema: Schema) -> None:
    obj = rollout(replicas=2, bogus=True)
    assert schema.prune(obj) == ["spec.bogus"]
    assert "bogus" not in obj["spec"]
    assert obj["spec"]["replicas"] == 2


def test_prune_keeps_preserve_unknown_subtrees(schema: Schema) -> None:
    strategy = {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}], "anything": {"deep": 1}}}
    template = {"metadata": {"labels": {"app": "demo"}, "x": 1}, "spec": {"containers": [{"name": "c"}]}}
    obj = rollout(strategy=copy.deepcopy(strategy), template=copy.deepcopy(template))
    assert schema.prune(obj) == []
    assert obj["spec"]["strategy"] == strategy
    assert obj["spec"]["template"] == template


def test_prune_root_metadata_to_object_meta_fields(schema: Schema) -> None:
    obj = rollout()
    obj["metadata"].update({"labels": {"a": "b"}, "bogus": 1, "finalizers": ["x/y"]})
    obj["topLevel"] = 1
    assert schema.prune(obj) == ["metadata.bogus", "topLevel"]
    assert obj["metadata"] == {
        "name": "demo",
        "namespace": "default",
        "labels": {"a": "b"},
        "finalizers": ["x/y"],
    }
    assert obj["apiVersion"] == "argoproj.io/v1alpha1" and obj["kind"] == "Rollout"


def test_prune_renders_list_item_paths_sorted(schema: Schema) -> None:
    obj = rollout(steps=[{"setWeight": 1}, {"setWeight": 2, "x": 1, "pause": {"duration": "1m", "y": 2}}])
    obj["spec"]["analysis"] = {"args": [{"name": "a", "zzz": 1}]}
    assert schema.prune(obj) == ["spec.analysis.args[0].zzz", "spec.steps[1].pause.y", "spec.steps[1].x"]
    assert obj["spec"]["steps"][1] == {"setWeight": 2, "pause": {"duration": "1m"}}


def test_prune_follows_additional_properties(schema: Schema) -> None:
    obj = rollout(annotations={"a": "b", "nested": {"x": 1}})
    obj["spec"]["selector"]["matchLabels"]["k"] = "v"
    # additionalProperties: true keeps keys but (like kube) prunes inside nested objects.
    assert schema.prune(obj) == ["spec.annotations.nested.x"]
    assert obj["spec"]["annotations"] == {"a": "b", "nested": {}}
    assert obj["spec"]["selector"]["matchLabels"] == {"app": "demo", "k": "v"}


def test_nested_meta_fields_are_pruned_unless_embedded() -> None:
    s = Schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "plain": {"type": "object", "properties": {"a": {"type": "string"}}},
                        "embedded": {
                            "type": "object",
                            "x-kubernetes-embedded-resource": True,
                            "properties": {"spec": {"type": "object"}},
                        },
                    },
                }
            },
        }
    )
    obj = {
        "spec": {
            "plain": {"a": "x", "kind": "K", "metadata": {}},
            "embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "junk": 1}, "spec": {}},
        }
    }
    assert s.prune(obj) == ["spec.plain.kind", "spec.plain.metadata", "spec.embedded.metadata.junk"]
    assert obj["spec"]["embedded"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {},
    }


def test_unknown_fields_does_not_mutate(schema: Schema) -> None:
    obj = rollout(bogus=1)
    obj["metadata"]["junk"] = True
    before = copy.deepcopy(obj)
    assert schema.unknown_fields(obj) == ["metadata.junk", "spec.bogus"]
    assert obj == before


def test_prune_drops_non_nullable_nulls_without_default(schema: Schema) -> None:
    obj = rollout(paused=None, restartAt=None, replicas=None)
    assert schema.prune(obj) == []
    assert "paused" not in obj["spec"]
    assert obj["spec"]["restartAt"] is None  # nullable
    assert obj["spec"]["replicas"] is None  # has a default, defaulting replaces it
    schema.apply_defaults(obj)
    assert obj["spec"]["replicas"] == 1


def test_empty_schema_accepts_anything() -> None:
    raws: list[dict[str, Any] | None] = [None, {}]
    for raw in raws:
        s = Schema(raw)
        obj = {"spec": {"whatever": [1, {"x": None}]}, "metadata": {"odd": 1}}
        before = copy.deepcopy(obj)
        assert s.empty
        assert s.prune(obj) == []
        s.apply_defaults(obj)
        assert s.validate(obj) == []
        assert s.list_info(("spec", "whatever")) is None
        assert obj == before


# ============================================================================ defaulting


def test_defaults_materialise_where_parent_exists(schema: Schema) -> None:
    obj = rollout(
        workloadRef={"name": "web"}, analysis={"args": [{"name": "a"}, {"name": "b", "value": "x"}]}
    )
    schema.apply_defaults(obj)
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["workloadRef"] == {"name": "web", "scaleDown": "never"}
    assert spec["analysis"]["successfulRunHistoryLimit"] == 5
    assert spec["analysis"]["args"] == [{"name": "a", "value": ""}, {"name": "b", "value": "x"}]


def test_defaults_skip_absent_parents(schema: Schema) -> None:
    obj = rollout()
    schema.apply_defaults(obj)
    assert obj["spec"] == {"selector": {"matchLabels": {"app": "demo"}}, "replicas": 1}
    no_spec: dict[str, Any] = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {}}
    schema.apply_defaults(no_spec)
    assert "spec" not in no_spec


def test_defaulted_parent_gets_nested_defaults() -> None:
    s = Schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "a": {"type": "integer", "default": 3},
                        "m": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "properties": {"x": {"type": "string", "default": "dx"}},
                            },
                        },
                    },
                }
            },
        }
    )
    obj: dict[str, Any] = {}
    s.apply_defaults(obj)
    assert obj == {"spec": {"a": 3}}
    obj = {"spec": {"m": {"k1": {}, "k2": {"x": "given"}}}}
    s.apply_defaults(obj)
    assert obj["spec"]["m"] == {"k1": {"x": "dx"}, "k2": {"x": "given"}}


def test_default_values_are_copied() -> None:
    s = Schema(
        {"type": "object", "properties": {"l": {"type": "array", "items": {"type": "string"}, "default": []}}}
    )
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    s.apply_defaults(a)
    s.apply_defaults(b)
    a["l"].append("x")
    assert b["l"] == []


# ============================================================================ validation


def test_valid_rollout_has_no_causes(schema: Schema) -> None:
    obj = rollout(
        replicas=3,
        maxSurge="25%",
        steps=[{"setWeight": 20}, {"pause": {"duration": 30}}],
        workloadRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        restartAt="2024-05-01T10:00:00Z",
        finalizers=["a", "b"],
    )
    obj["status"] = {
        "phase": "Healthy",
        "replicas": 3,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    assert schema.validate(obj) == []


def test_type_error_message_matches_upstream(schema: Schema) -> None:
    causes = schema.validate(rollout(replicas="string"))
    assert causes == [
        Cause(
            "FieldValueTypeInvalid",
            "spec.replicas",
            'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
        )
    ]
    assert causes[0].text() == (
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    )


def test_type_errors_for_each_json_type(schema: Schema) -> None:
    obj = rollout(paused="yes", steps={"a": 1})
    obj["status"] = {"conditions": [{"type": 5}]}
    fields = {c.field: c.message for c in schema.validate(obj)}
    assert (
        fields["spec.paused"]
        == 'Invalid value: "string": spec.paused in body must be of type boolean: "string"'
    )
    assert (
        fields["spec.steps"] == 'Invalid value: "object": spec.steps in body must be of type array: "object"'
    )
    assert fields["status.conditions[0].type"] == (
        'Invalid value: "integer": status.conditions[0].type in body must be of type string: "integer"'
    )


def test_integral_float_is_an_integer(schema: Schema) -> None:
    assert schema.validate(rollout(replicas=2.0)) == []
    assert schema.validate(rollout(replicas=2.5))[0].message.endswith('must be of type integer: "number"')


def test_required_field(schema: Schema) -> None:
    obj = rollout()
    del obj["spec"]["selector"]
    obj["spec"]["analysis"] = {"args": [{"value": "v"}]}
    assert schema.validate(obj) == [
        Cause("FieldValueRequired", "spec.analysis.args[0].name", "Required value"),
        Cause("FieldValueRequired", "spec.selector", "Required value"),
    ]


def test_enum_message(schema: Schema) -> None:
    causes = schema.validate(rollout(workloadRef={"kind": "StatefulSet"}))
    assert causes == [
        Cause(
            "FieldValueNotSupported",
            "spec.workloadRef.kind",
            'Unsupported value: "StatefulSet": supported values: "Deployment", "ReplicaSet"',
        )
    ]


def test_enum_of_numbers_renders_json() -> None:
    s = Schema({"type": "object", "properties": {"n": {"type": "number", "enum": [1, 2.5]}}})
    assert s.validate({"n": 1.0}) == []
    assert s.validate({"n": 3}) == [
        Cause("FieldValueNotSupported", "n", 'Unsupported value: 3: supported values: "1", "2.5"')
    ]


def test_numeric_bounds(schema: Schema) -> None:
    assert schema.validate(rollout(replicas=-1, revisionHistoryLimit=101)) == [
        Cause(
            "FieldValueInvalid",
            "spec.replicas",
            "Invalid value: -1: spec.replicas in body should be greater than or equal to 0",
        ),
        Cause(
            "FieldValueInvalid",
            "spec.revisionHistoryLimit",
            "Invalid value: 101: spec.revisionHistoryLimit in body should be less than or equal to 100",
        ),
    ]


def test_exclusive_bounds_and_floats() -> None:
    s = Schema(
        {
            "type": "object",
            "properties": {
                "f": {"type": "number", "minimum": 0.5, "exclusiveMinimum": True},
                "g": {"type": "number", "maximum": 1e6, "exclusiveMaximum": True},
                "m": {"type": "integer", "multipleOf": 5},
            },
        }
    )
    causes = s.validate({"f": 0.5, "g": 2e6, "m": 7})
    assert [c.message for c in causes] == [
        "Invalid value: 0.5: f in body should be greater than 0.5",
        "Invalid value: 2e+06: g in body should be less than 1e+06",
        "Invalid value: 7: m in body should be a multiple of 5",
    ]


def test_string_constraints(schema: Schema) -> None:
    def causes_for(name: str) -> list[Cause]:
        return schema.validate(rollout(workloadRef={"name": name}))

    assert causes_for("") == [
        Cause(
            "FieldValueInvalid",
            "spec.workloadRef.name",
            'Invalid value: "": spec.workloadRef.name in body should be at least 1 chars long',
        )
    ]
    assert causes_for("x" * 21) == [
        Cause("FieldValueTooLong", "spec.workloadRef.name", "Too long: may not be more than 20 bytes")
    ]
    assert causes_for("Web_1") == [
        Cause(
            "FieldValueInvalid",
            "spec.workloadRef.name",
            "Invalid value: \"Web_1\": spec.workloadRef.name in body should match '^[a-z-]+$'",
        )
    ]


def test_array_constraints(schema: Schema) -> None:
    args = [{"name": str(i)} for i in range(4)]
    assert schema.validate(rollout(analysis={"args": args})) == [
        Cause("FieldValueTooMany", "spec.analysis.args", "Too many: 4: must have at most 3 items")
    ]
    s = Schema(
        {
            "type": "object",
            "properties": {
                "l": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "uniqueItems": True}
            },
        }
    )
    assert [c.message for c in s.validate({"l": [1]})] == [
        "Invalid value: 1: l in body should have at least 2 items"
    ]
    assert [c.message for c in s.validate({"l": [1, 1]})] == [
        'Invalid value: "": l in body shouldn\'t contain duplicates'
    ]


def test_nullable_and_int_or_string(schema: Schema) -> None:
    assert schema.validate(rollout(restartAt=None, maxSurge=1)) == []
    causes = schema.validate(rollout(maxSurge=True))
    assert causes[0] == Cause(
        "FieldValueTypeInvalid",
        "spec.maxSurge",
        'Invalid value: "boolean": spec.maxSurge in body must be of type integer,string: "boolean"',
    )
    assert (
        Cause(
            "FieldValueInvalid",
            "<nil>",
            'Invalid value: "": "spec.maxSurge" must validate at least one schema (anyOf)',
        )
        in causes
    )
    null_cause = schema.validate({"spec": {"selector": {}, "steps": [None]}})
    assert null_cause == [
        Cause(
            "FieldValueTypeInvalid",
            "spec.steps[0]",
            'Invalid value: "null": spec.steps[0] in body must be of type object: "null"',
        )
    ]


def test_date_time_format(schema: Schema) -> None:
    assert schema.validate(rollout(restartAt="2024-05-01T10:00:00.123+02:00")) == []
    assert schema.validate(rollout(restartAt="yesterday")) == [
        Cause(
            "FieldValueTypeInvalid",
            "spec.restartAt",
            'Invalid value: "yesterday": spec.restartAt in body must be of type date-time: "yesterday"',
        )
    ]


def test_one_of_all_of_not() -> None:
    s = Schema(
        {
            "type": "object",
            "properties": {
                "o": {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                "n": {"type": "string", "not": {"enum": ["forbidden"]}},
                "all": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 3}]},
            },
        }
    )
    assert s.validate({"o": {"a": 1}, "n": "ok", "all": 2}) == []
    messages = [c.message for c in s.validate({"o": {"a": 1, "b": 2}, "n": "forbidden", "all": 5})]
    assert messages == [
        'Invalid value: "": "o" must validate one and only one schema (oneOf). Found 2 valid alternatives',
        'Invalid value: "": "n" must not validate the schema (not)',
        "Invalid value: 5: all in body should be less than or equal to 3",
        'Invalid value: "": "all" must validate all the schemas (allOf)',
    ]
    none_valid = s.validate({"o": {}})
    assert none_valid[0].message.endswith("(oneOf). Found none valid")
    assert none_valid[1] == Cause("FieldValueRequired", "o.a", "Required value")


def test_metadata_is_only_checked_to_be_an_object(schema: Schema) -> None:
    obj = rollout()
    obj["metadata"] = {"name": 5, "labels": "odd"}
    assert schema.validate(obj) == []
    obj["metadata"] = "nope"
    assert schema.validate(obj) == [
        Cause(
            "FieldValueTypeInvalid",
            "metadata",
            'Invalid value: "string": metadata in body must be of type object: "string"',
        )
    ]


def test_list_type_duplicates(schema: Schema) -> None:
    obj = rollout(
        finalizers=["a", "b", "a", "a"], analysis={"args": [{"name": "x"}, {"name": "x", "value": "2"}]}
    )
    assert schema.validate(obj) == [
        Cause("FieldValueDuplicate", "spec.finalizers[2]", 'Duplicate value: "a"'),
        Cause(
            "FieldValueDuplicate",
            "spec.analysis.args[1]",
            'Duplicate value: map[string]interface {}{"name":"x"}',
        ),
    ]


def test_cel_rules_are_ignored() -> None:
    s = Schema(
        {
            "type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-validations": [{"rule": "false"}]}},
        }
    )
    assert s.validate({"spec": {}}) == []


def test_go_float_rendering() -> None:
    assert [go_float(v) for v in (0.0, 1.0, 1.5, 123456.0, 1e6, 2.0**64, 1.5e-7, 0.0001, -2.25)] == [
        "0",
        "1",
        "1.5",
        "123456",
        "1e+06",
        "1.8446744073709552e+19",
        "1.5e-07",
        "0.0001",
        "-2.25",
    ]


# ============================================================================ list_info


def test_list_info(schema: Schema) -> None:
    assert schema.list_info(("spec", "analysis", "args")) == ("map", ("name",))
    assert schema.list_info(("spec", "finalizers")) == ("set", ())
    assert schema.list_info(("spec", "steps")) is None
    assert schema.list_info(("spec", "nope")) is None
    assert schema.list_info(("spec", "strategy", "canary", "steps")) is None


def test_list_info_steps_over_items() -> None:
    s = Schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "groups": {
                            "type": "array",
                            "x-kubernetes-list-type": "atomic",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "ports": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                                        "items": {"type": "object"},
                                    }
                                },
                            },
                        },
                        "byName": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "array",
                                "items": {"type": "string"},
                                "x-kubernetes-list-type": "set",
                            },
                        },
                    },
                }
            },
        }
    )
    assert s.list_info(("spec", "groups")) == ("atomic", ())
    assert s.list_info(("spec", "groups", "ports")) == ("map", ("port", "protocol"))
    assert s.list_info(("spec", "byName", "anything")) == ("set", ())


# ============================================================================ CRD validation and defaults


def test_valid_crd_has_no_causes() -> None:
    assert validate_crd(rollout_crd()) == []


def test_crd_name_mismatch() -> None:
    crd = rollout_crd()
    crd["metadata"]["name"] = "rollout.argoproj.io"
    assert validate_crd(crd) == [
        Cause(
            "FieldValueInvalid",
            "metadata.name",
            'Invalid value: "rollout.argoproj.io": must be spec.names.plural+"."+spec.group',
        )
    ]


def test_crd_two_storage_versions() -> None:
    crd = rollout_crd()
    second = copy.deepcopy(crd["spec"]["versions"][0])
    second["name"] = "v1beta1"
    crd["spec"]["versions"].append(second)
    causes = validate_crd(crd)
    assert [(c.type, c.field) for c in causes] == [("FieldValueInvalid", "spec.versions")]
    assert causes[0].message.startswith("Invalid value: []apiextensions.CustomResourceDefinitionVersion{")
    assert causes[0].message.endswith(": must have exactly one version marked as storage version")


def test_crd_duplicate_versions_and_bad_names() -> None:
    crd = rollout_crd()
    crd["spec"]["versions"].append(copy.deepcopy(crd["spec"]["versions"][0]))
    crd["spec"]["versions"][1]["storage"] = False
    crd["spec"]["names"]["shortNames"] = ["RO"]
    crd["spec"]["names"]["plural"] = "Rollouts"
    crd["metadata"]["name"] = "Rollouts.argoproj.io"
    fields = [c.field for c in validate_crd(crd)]
    assert fields == [
        "metadata.name",
        "spec.versions",
        "spec.names.plural",
        "spec.names.shortNames[0]",
    ]
    message = next(c.message for c in validate_crd(crd) if c.field == "spec.names.plural")
    assert message.startswith('Invalid value: "Rollouts": a DNS-1035 label must consist of lower case')


def test_crd_group_scope_and_versions() -> None:
    crd = rollout_crd()
    crd["metadata"]["name"] = "rollouts.argoproj"
    crd["spec"]["group"] = "argoproj"
    crd["spec"]["scope"] = "Global"
    crd["spec"]["versions"][0]["name"] = "V1"
    assert validate_crd(crd) == [
        Cause(
            "FieldValueInvalid",
            "spec.group",
            'Invalid value: "argoproj": should be a domain with at least one dot',
        ),
        Cause(
            "FieldValueNotSupported",
            "spec.scope",
            'Unsupported value: "Global": supported values: "Cluster", "Namespaced"',
        ),
        Cause(
            "FieldValueInvalid",
            "spec.versions[0].name",
            'Invalid value: "V1": a DNS-1035 label must consist of lower case alphanumeric characters '
            "or '-', start with an alphabetic character, and end with an alphanumeric character "
            "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
    ]


def test_crd_missing_pieces() -> None:
    crd: dict[str, Any] = {"metadata": {}, "spec": {"names": {}, "versions": []}}
    fields = [(c.type, c.field) for c in validate_crd(crd)]
    assert fields == [
        ("FieldValueRequired", "metadata.name"),
        ("FieldValueRequired", "spec.group"),
        ("FieldValueRequired", "spec.scope"),
        ("FieldValueInvalid", "spec.versions"),
        ("FieldValueRequired", "spec.names.plural"),
        ("FieldValueRequired", "spec.names.singular"),
        ("FieldValueRequired", "spec.names.kind"),
        ("FieldValueRequired", "spec.names.listKind"),
    ]


def test_crd_schema_structure() -> None:
    crd = rollout_crd()
    version = crd["spec"]["versions"][0]
    version["schema"]["openAPIV3Schema"] = {
        "type": "array",
        "items": {"type": "object"},
        "properties": {"spec": {"properties": {"l": {"type": "array"}}}},
    }
    base = "spec.versions[0].schema.openAPIV3Schema"
    assert [(c.type, c.field, c.message) for c in validate_crd(crd)] == [
        ("FieldValueInvalid", f"{base}.type", 'Invalid value: "array": must be object at the root'),
        (
            "FieldValueRequired",
            f"{base}.properties[spec].type",
            "Required value: must not be empty for specified object fields",
        ),
        (
            "FieldValueRequired",
            f"{base}.properties[spec].properties[l].items",
            "Required value: must be specified",
        ),
    ]
    del version["schema"]
    assert validate_crd(crd) == [
        Cause("FieldValueRequired", f"{base}", "Required value: schemas are required"),
    ]


def test_crd_scale_paths() -> None:
    crd = rollout_crd()
    crd["spec"]["versions"][0]["subresources"]["scale"] = {
        "specReplicasPath": ".status.replicas",
        "statusReplicasPath": "status.replicas",
        "labelSelectorPath": ".metadata.labels",
    }
    base = "spec.versions[0].subresources.scale"
    assert [(c.field, c.message) for c in validate_crd(crd)] == [
        (f"{base}.specReplicasPath", 'Invalid value: ".status.replicas": should be a json path under .spec'),
        (
            f"{base}.statusReplicasPath",
            'Invalid value: "status.replicas": must be a simple json path starting with .',
        ),
        (
            f"{base}.labelSelectorPath",
            'Invalid value: ".metadata.labels": should be a json path under either .spec or .status',
        ),
    ]


def test_crd_defaults_and_status() -> None:
    crd = rollout_crd()
    original = copy.deepcopy(crd)
    out = crd_defaults(crd, now="2024-01-01T00:00:00Z")
    assert crd == original
    assert out["spec"]["names"]["singular"] == "rollout"
    assert out["spec"]["names"]["listKind"] == "RolloutList"
    assert out["spec"]["conversion"] == {"strategy": "None"}
    status = out["status"]
    assert status["acceptedNames"] == {
        "plural": "rollouts",
        "singular": "rollout",
        "shortNames": ["ro"],
        "kind": "Rollout",
        "listKind": "RolloutList",
        "categories": ["all"],
    }
    assert status["storedVersions"] == ["v1alpha1"]
    assert status["conditions"] == [
        {
            "type": "NamesAccepted",
            "status": "True",
            "lastTransitionTime": "2024-01-01T00:00:00Z",
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True",
            "lastTransitionTime": "2024-01-01T00:00:00Z",
            "reason": "InitialNamesAccepted",
            "message": "the initial names have been accepted",
        },
    ]


def test_crd_defaults_on_update_keep_history() -> None:
    first = crd_defaults(rollout_crd(), now="2024-01-01T00:00:00Z")
    first["spec"]["versions"][0]["storage"] = False
    new_version = copy.deepcopy(first["spec"]["versions"][0])
    new_version.update({"name": "v1", "storage": True})
    first["spec"]["versions"].append(new_version)
    second = crd_defaults(first, now="2024-02-02T00:00:00Z")
    assert second["status"]["storedVersions"] == ["v1alpha1", "v1"]
    assert {c["lastTransitionTime"] for c in second["status"]["conditions"]} == {"2024-01-01T00:00:00Z"}
    assert validate_crd(second) == []
    second["spec"]["versions"].pop(0)
    second["spec"]["versions"][0]["storage"] = True
    assert validate_crd(second) == [
        Cause(
            "FieldValueInvalid",
            "status.storedVersions[0]",
            'Invalid value: "v1alpha1": must appear in spec.versions',
        )
    ]


def test_openapi_schema_for() -> None:
    version_schema = {"openAPIV3Schema": copy.deepcopy(ROLLOUT_SCHEMA)}
    published = openapi_schema_for(version_schema)
    assert published["properties"]["metadata"] == {"type": "object"}
    assert published["properties"]["spec"] == ROLLOUT_SCHEMA["properties"]["spec"]
    published["properties"]["spec"]["type"] = "changed"
    assert version_schema["openAPIV3Schema"]["properties"]["spec"]["type"] == "object"
    bare = openapi_schema_for(
        {"type": "object", "properties": {"metadata": {"type": "object", "properties": {}}}}
    )
    assert bare["properties"] == {
        "metadata": {"type": "object"},
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
    }
    assert openapi_schema_for(None)["x-kubernetes-preserve-unknown-fields"] is True


# ============================================================================ optional: shared examples


def _example_objects() -> list[dict[str, Any]]:
    root = os.environ.get("TUGBOAT_EXAMPLES")
    if not root or not Path(root).is_dir():
        return []
    found: list[dict[str, Any]] = []
    for path in sorted(Path(root).rglob("*.yaml"))[:200]:
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        found.extend(d for d in docs if isinstance(d, dict) and d.get("kind"))
    return found


def test_examples_survive_preserve_unknown_schema() -> None:
    objects = _example_objects()
    if not objects:
        pytest.skip("TUGBOAT_EXAMPLES not set")
    s = Schema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    for obj in objects:
        copy_ = copy.deepcopy(obj)
        unknown = s.prune(copy_)
        assert all(p.startswith("metadata.") for p in unknown)
        assert {k: v for k, v in copy_.items() if k != "metadata"} == {
            k: v for k, v in obj.items() if k != "metadata"
        }
        assert s.validate(copy_) == []
    crds = [o for o in objects if o.get("kind") == "CustomResourceDefinition"]
    for crd in crds:
        assert validate_crd(crd) == [], crd["metadata"]["name"]
