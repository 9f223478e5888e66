"""Pod-template and step hashes: the names of a Rollout's ReplicaSets and the identity of its steps.

A Rollout's ReplicaSet is ``<rollout>-<hash>`` and carries the label ``rollouts-pod-template-hash``; the
hash is how the controller finds "the ReplicaSet for this template" again after a restart, and how
``status.currentPodHash``/``status.stableRS`` name revisions. ``status.currentStepHash`` detects a change
of the canary steps (which restarts them at step 0). The shape is Argo Rollouts' (research/rollouts.md
§2.8, upstream ``utils/hash``): FNV-1a 32 over a JSON serialisation, the collision count appended as an
8-byte little-endian buffer, the decimal digest "safe encoded" into ``[4-9bcdf]{1,10}``.

Deliberately *not* byte-compatible with upstream: Go hashes ``json.Marshal`` of the typed
``PodTemplateSpec`` (struct field order, ``omitempty`` rules, defaulted empties such as
``"creationTimestamp":null``). We hash a canonical JSON of the plain dict instead (keys sorted, compact),
so the same template always gives the same hash here, but an upstream controller's ReplicaSets get other
names. Adopting them is the controller's job (by comparing templates), not this module's.
"""

from __future__ import annotations

from typing import Any

import orjson

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""The letters of upstream ``rand.SafeEncodeString``: no vowels and no 0/1/3, so no words appear."""

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def fnv1a_32(data: bytes, seed: int = _FNV32_OFFSET) -> int:
    """The 32-bit FNV-1a digest of ``data`` (``seed`` continues an earlier digest)."""
    h = seed
    for byte in data:
        h = ((h ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Map every character onto :data:`SAFE_ALPHABET` by its code modulo 27 (digits → ``4-9bcdf``)."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in s)


def canonical_json(value: Any) -> bytes:
    """The serialisation that is hashed: compact JSON with object keys sorted."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def pod_template_hash(template: dict[str, Any], collision_count: int | None = None) -> str:
    """The ``rollouts-pod-template-hash`` of a pod template (``spec.template``).

    ``collision_count`` is ``status.collisionCount``: when it is set (even 0, as upstream) it is mixed in as
    a little-endian uint32 padded to 8 bytes, so bumping it yields a new name after a name collision.
    """
    digest = fnv1a_32(canonical_json(template))
    if collision_count is not None:
        extra = (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
        digest = fnv1a_32(extra, seed=digest)
    return safe_encode(str(digest))


def steps_hash(steps: list[Any] | None) -> str:
    """``status.currentStepHash`` of ``spec.strategy.canary.steps`` (``None`` hashes like Go's nil slice)."""
    return safe_encode(str(fnv1a_32(canonical_json(steps))))
