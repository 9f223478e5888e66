"""ControllerRevisions: the template history of StatefulSets and DaemonSets.

Both controllers snapshot their pod template into a ControllerRevision whose ``data`` is a strategic merge
patch replacing ``spec.template`` (so applying the revision to the set gives back that template), named
``<set>-<hash>`` where the hash covers the data and the set's ``collisionCount``; the revision number grows
with every new (or re-adopted, on rollback) template. ``kubectl rollout history`` and ``rollout undo`` for
these kinds read exactly this. Hashes are FNV-1 (32-bit) rendered with the apimachinery "safe" alphabet,
like upstream, though the bytes hashed (our JSON) differ.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from tugboat.kube import errors, kinds
from tugboat.kube.client import Client, Obj
from tugboat.localcluster.controllers.workloads import controlled_by, meta, owner_reference, patch_status

HASH_LABEL = "controller.kubernetes.io/hash"
REVISION_HASH_LABEL = "controller-revision-hash"

_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1_32(data: bytes) -> int:
    value = _FNV_OFFSET
    for byte in data:
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def safe_encode(text: str) -> str:
    """apimachinery's ``rand.SafeEncodeString``: no vowels, no look-alike digits (no bad words in names)."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


def template_patch(template: dict[str, Any]) -> dict[str, Any]:
    """The revision data for a pod template: a patch that replaces ``spec.template``."""
    body = copy.deepcopy(template)
    body["$patch"] = "replace"
    return {"spec": {"template": body}}


def template_of(revision: Obj) -> dict[str, Any]:
    """The pod template a revision records."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def hash_data(data: dict[str, Any], collision_count: int) -> str:
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv1_32(raw)))


def revision_name(owner_name: str, hash_value: str) -> str:
    return f"{owner_name[:223]}-{hash_value}"


def revision_number(revision: Obj) -> int:
    try:
        return int(revision.get("revision") or 0)
    except (TypeError, ValueError):
        return 0


def sort_revisions(revisions: list[Obj]) -> list[Obj]:
    return sorted(revisions, key=lambda r: (revision_number(r), str(meta(r).get("name"))))


def equal_data(a: Obj, b: Obj) -> bool:
    return (a.get("data") or {}) == (b.get("data") or {})


def new_revision(
    owner: Obj,
    owner_kind: kinds.Kind,
    template: dict[str, Any],
    *,
    number: int,
    collision_count: int,
    hash_label: str = HASH_LABEL,
    annotations: dict[str, str] | None = None,
) -> Obj:
    """A ControllerRevision (not yet created) recording ``template`` for ``owner``.

    StatefulSets label it ``controller.kubernetes.io/hash``; DaemonSets ``controller-revision-hash`` (and
    copy their annotations onto it).
    """
    data = template_patch(template)
    digest = hash_data(data, collision_count)
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    labels[hash_label] = digest
    metadata: dict[str, Any] = {
        "name": revision_name(str(meta(owner).get("name")), digest),
        "namespace": meta(owner).get("namespace"),
        "labels": labels,
        "ownerReferences": [owner_reference(owner, owner_kind)],
    }
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {
        "apiVersion": kinds.CONTROLLERREVISION.api_version,
        "kind": kinds.CONTROLLERREVISION.kind,
        "metadata": metadata,
        "data": data,
        "revision": number,
    }


class CollisionError(Exception):
    """A revision with our name but other data exists; the owner's ``collisionCount`` must grow."""


async def create_revision(client: Client, owner: Obj, revision: Obj) -> Obj:
    """Create ``revision``; an identical existing one of ours is returned instead.

    Raises :class:`CollisionError` when the name is taken by different data (or another owner).
    """
    try:
        return await client.create(kinds.CONTROLLERREVISION, copy.deepcopy(revision))
    except errors.ApiError as exc:
        if not exc.already_exists:
            raise
    name = str(meta(revision).get("name"))
    existing = await client.get(kinds.CONTROLLERREVISION, name, meta(revision).get("namespace"))
    if controlled_by(existing, owner) and equal_data(existing, revision):
        return existing
    raise CollisionError(name)


async def bump_revision(client: Client, revision: Obj, number: int) -> Obj:
    """Give an existing revision a new number (a rollback to an older template)."""
    if revision_number(revision) == number:
        return revision
    return await client.patch(
        kinds.CONTROLLERREVISION,
        str(meta(revision).get("name")),
        {"revision": number},
        namespace=meta(revision).get("namespace"),
    )


async def truncate_history(client: Client, revisions: list[Obj], live: set[str], limit: int) -> None:
    """Delete the oldest revisions that no pod or status refers to, keeping ``limit`` of them."""
    history = [r for r in sort_revisions(revisions) if str(meta(r).get("name")) not in live]
    if limit < 0 or len(history) <= limit:
        return
    for revision in history[: len(history) - limit]:
        await client.delete(
            kinds.CONTROLLERREVISION, str(meta(revision).get("name")), meta(revision).get("namespace")
        )


async def ensure_revision(
    client: Client,
    owner: Obj,
    owner_kind: kinds.Kind,
    revisions: list[Obj],
    template: dict[str, Any],
    *,
    collision_count: int,
    hash_label: str = HASH_LABEL,
    annotations: dict[str, str] | None = None,
) -> Obj:
    """The revision of ``owner``'s current template.

    That is the newest revision if it records this template; an older one that does is renumbered to
    become the newest (a rollback); otherwise a new revision is created. Raises :class:`CollisionError`
    when the new revision's name is taken.
    """
    ordered = sort_revisions(revisions)
    number = revision_number(ordered[-1]) + 1 if ordered else 1
    candidate = new_revision(
        owner,
        owner_kind,
        template,
        number=number,
        collision_count=collision_count,
        hash_label=hash_label,
        annotations=annotations,
    )
    equal = [r for r in ordered if equal_data(r, candidate)]
    if equal and equal[-1] is ordered[-1]:
        return ordered[-1]
    if equal:
        return await bump_revision(client, equal[-1], number)
    return await create_revision(client, owner, candidate)


def collision_count(owner: Obj) -> int:
    return int((owner.get("status") or {}).get("collisionCount") or 0)


async def revision_or_collision(
    client: Client,
    owner: Obj,
    owner_kind: kinds.Kind,
    revisions: list[Obj],
    *,
    hash_label: str = HASH_LABEL,
    annotations: dict[str, str] | None = None,
) -> Obj | None:
    """:func:`ensure_revision` of ``owner``'s ``spec.template`` with its ``collisionCount``.

    On a name collision the count is raised in the owner's status instead and None is returned: the
    caller syncs again (with the new count, once its cache shows it).
    """
    collisions = collision_count(owner)
    try:
        return await ensure_revision(
            client,
            owner,
            owner_kind,
            revisions,
            owner["spec"]["template"],
            collision_count=collisions,
            hash_label=hash_label,
            annotations=annotations,
        )
    except CollisionError:
        await patch_status(client, owner_kind, owner, {"collisionCount": collisions + 1})
        return None
