"""Index lifecycle of a document projection: template, generations and the two aliases.

Readers use the read alias ``{prefix}{name}``, filtered to visible documents so tombstones and hidden
documents never show up in hits or totals. Writers resolve the write alias ``{prefix}{name}-write`` per
batch and write to every physical index behind it: one normally, two while a rebuild fills the next
generation. Physical indexes are ``{prefix}{name}-g{N:06d}``, created from the projection's template;
every alias move is a single atomic ``_aliases`` call, so a reader never sees a half-switched state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from opensearchpy.exceptions import RequestError

from projector.sinks.opensearch.errors import IndexLayoutError
from projector.sinks.opensearch.types import (
    META_FIELD,
    META_MAPPING,
    READ_FILTER,
    IndexDescription,
    IndexNames,
)

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

    from projector.projection.base import DocumentProjection

logger = logging.getLogger(__name__)

META_KEY = "projector"
TEMPLATE_PRIORITY_BASE = 100


def names(projection: DocumentProjection, prefix: str) -> IndexNames:
    return IndexNames(base=f"{prefix}{projection.name}")


def index_mappings(projection: DocumentProjection) -> dict[str, Any]:
    """The projection's mappings plus the meta object, strict, with the definition hash in ``_meta``."""
    mappings = dict(projection.mappings)
    properties = dict(mappings["properties"])
    if META_FIELD in properties:
        raise IndexLayoutError(f"projection {projection.name!r} maps {META_FIELD!r}, reserved")
    properties[META_FIELD] = META_MAPPING
    meta = {META_KEY: {"projection": projection.name, "definition_hash": projection.definition_hash()}}
    return {**mappings, "dynamic": "strict", "properties": properties, "_meta": meta}


def template_body(projection: DocumentProjection, prefix: str) -> dict[str, Any]:
    index = names(projection, prefix)
    template: dict[str, Any] = {"mappings": index_mappings(projection)}
    if projection.settings:
        template["settings"] = projection.settings
    # Patterns of different projections only overlap when one name is a prefix of the other; a longer
    # pattern is more specific, so it wins instead of OpenSearch refusing equal priorities.
    return {
        "index_patterns": [index.pattern],
        "priority": TEMPLATE_PRIORITY_BASE + len(index.pattern),
        "template": template,
        "_meta": {META_KEY: {"definition_hash": projection.definition_hash()}},
    }


def put_template(client: OpenSearch, projection: DocumentProjection, prefix: str) -> None:
    client.indices.put_index_template(
        name=names(projection, prefix).template, body=template_body(projection, prefix)
    )


def ensure(client: OpenSearch, projection: DocumentProjection, prefix: str) -> str:
    """Template, first physical index and both aliases, creating only what is missing; the read index."""
    index = names(projection, prefix)
    put_template(client, projection, prefix)
    layout = _layout(client, index)
    for physical in layout:
        ensure_meta_mapping(client, physical)
    read, writes = _alias_targets(layout, index)
    if read and writes:
        return read
    if not layout:
        first = index.physical(1)
        try:
            client.indices.create(index=first, body=_creation_body(projection, index, 1, read=True))
            logger.info("created %s with aliases %s and %s", first, index.read_alias, index.write_alias)
            return first
        except RequestError as error:
            if error.error != "resource_already_exists_exception":
                raise
        layout = _layout(client, index)
        read, writes = _alias_targets(layout, index)
        if read and writes:
            return read
    target = read or (writes[0] if writes else _newest(layout, index))
    actions: list[dict[str, Any]] = []
    if not read:
        actions.append({"add": {"index": target, "alias": index.read_alias, "filter": READ_FILTER}})
    if not writes:
        actions.append({"add": {"index": target, "alias": index.write_alias}})
    client.indices.update_aliases(body={"actions": actions})
    logger.warning("restored missing aliases of %s onto %s", index.base, target)
    return target


_meta_ready: set[str] = set()


def ensure_meta_mapping(client: OpenSearch, physical: str) -> None:
    """Add meta fields newer than the index (``_projector.key``) to its mapping; once per process and index.

    Adding a field to an object mapping is allowed on a live index, and it is idempotent.
    """
    if physical in _meta_ready:
        return
    client.indices.put_mapping(index=physical, body={"properties": {META_FIELD: META_MAPPING}})
    _meta_ready.add(physical)


def write_targets(
    client: OpenSearch, projection: DocumentProjection, prefix: str, request_timeout: float | None = None
) -> list[str]:
    """Physical indexes behind the write alias, the one serving reads first; empty if the alias is missing."""
    index = names(projection, prefix)
    params: dict[str, Any] = {"ignore": 404}
    if request_timeout is not None:
        params["request_timeout"] = request_timeout
    found = _indexes_only(client.indices.get_alias(name=f"{index.write_alias},{index.read_alias}", **params))
    read, writes = _alias_targets(found, index)
    return sorted(writes, key=lambda name: (name != read, name))


def read_index(client: OpenSearch, projection: DocumentProjection, prefix: str) -> str | None:
    """The physical index behind the read alias (None before ``ensure``)."""
    index = names(projection, prefix)
    found = _indexes_only(client.indices.get_alias(name=index.read_alias, ignore=404))
    return _alias_targets(found, index)[0]


def begin_rebuild(client: OpenSearch, projection: DocumentProjection, prefix: str) -> str:
    """Create the next generation from the current definition and add it to the write alias.

    From now on every batch writes to both generations; the backfill fills the new one. Calling it again
    during the same rebuild returns the index already being built.
    """
    index = names(projection, prefix)
    layout, read, writes, building = _alias_state(
        client, index, when_absent="does not exist yet: run ensure (projector setup) first"
    )
    if building:
        stored = _stored_hash(client, building[0])
        if stored != projection.definition_hash():
            raise IndexLayoutError(
                f"a rebuild into {building[0]} with another definition is in progress; roll it back first"
            )
        return building[0]
    put_template(client, projection, prefix)
    generation = max(index.generation_of(name) or 0 for name in layout) + 1
    new = index.physical(generation)
    client.indices.create(index=new, body=_creation_body(projection, index, generation, read=False))
    retired = [name for name in writes if name not in (read, new)]
    if retired:
        client.indices.update_aliases(
            body={"actions": [{"remove": {"index": name, "alias": index.write_alias}} for name in retired]}
        )
    logger.info("rebuild of %s started: writes now reach %s and %s", index.base, read, new)
    return new


def finish_rebuild(client: OpenSearch, projection: DocumentProjection, prefix: str) -> str:
    """Switch reads to the rebuilt generation atomically; the new index.

    The previous index keeps receiving every live write (it stays behind the write alias) until the next
    rebuild begins, so ``rollback`` returns to an index that is still exact.
    """
    index = names(projection, prefix)
    read, writes = _alias_targets(_layout(client, index), index)
    building = _building(index, read, writes)
    if not building:
        if read:
            return read
        raise IndexLayoutError(f"no rebuild of {index.base} in progress (write alias: {writes})")
    new = max(building, key=lambda name: index.generation_of(name) or 0)
    actions: list[dict[str, Any]] = [
        {"add": {"index": new, "alias": index.read_alias, "filter": READ_FILTER}}
    ]
    if read:
        actions.append({"remove": {"index": read, "alias": index.read_alias}})
    stale = [name for name in writes if name not in (new, read)]
    actions += [{"remove": {"index": name, "alias": index.write_alias}} for name in stale]
    client.indices.update_aliases(body={"actions": actions})
    logger.info(
        "rebuild of %s finished: reads moved from %s to %s (%s still written for rollback)",
        index.base,
        read,
        new,
        read,
    )
    return new


def rollback(client: OpenSearch, projection: DocumentProjection, prefix: str) -> str:
    """Point reads back at the previous generation, atomically; the index now serving reads.

    During a rebuild this only stops writing to the new generation. After ``finish_rebuild`` the previous
    generation is exact, since it kept receiving live writes; an older one (not written since the next
    rebuild began) has missed changes, which the log says: run verify --repair after such a rollback.
    """
    index = names(projection, prefix)
    layout, read, writes, building = _alias_state(
        client, index, when_absent="does not exist: nothing to roll back"
    )
    if building:
        client.indices.update_aliases(
            body={"actions": [{"remove": {"index": name, "alias": index.write_alias}} for name in building]}
        )
        logger.info("rebuild of %s rolled back: writes reach only %s", index.base, read)
        return read
    current = index.generation_of(read) or 0
    older = [name for name in layout if (index.generation_of(name) or 0) < current]
    if not older:
        raise IndexLayoutError(f"{read} is the oldest generation of {index.base}: nothing to roll back to")
    previous = max(older, key=lambda name: index.generation_of(name) or 0)
    actions: list[dict[str, Any]] = [
        {"remove": {"index": read, "alias": index.read_alias}},
        {"remove": {"index": read, "alias": index.write_alias}},
        {"add": {"index": previous, "alias": index.read_alias, "filter": READ_FILTER}},
    ]
    if previous not in writes:
        actions.append({"add": {"index": previous, "alias": index.write_alias}})
        logger.warning(
            "%s rolled back from %s to %s, which missed the changes written since the rebuild "
            "after it began: run projector verify --repair",
            index.base,
            read,
            previous,
        )
    else:
        logger.info("%s rolled back from %s to %s (kept exact by live writes)", index.base, read, previous)
    client.indices.update_aliases(body={"actions": actions})
    return previous


def describe(client: OpenSearch, projection: DocumentProjection, prefix: str) -> IndexDescription:
    """Which generation serves reads, where writes go, and whether its definition matches the code."""
    index = names(projection, prefix)
    read, writes = _alias_targets(_layout(client, index), index)
    return IndexDescription(
        read_alias=index.read_alias,
        write_alias=index.write_alias,
        exists=read is not None,
        read_index=read,
        generation=index.generation_of(read) if read else None,
        write_indexes=tuple(sorted(writes, key=lambda name: (name != read, name))),
        stored_hash=_stored_hash(client, read) if read else None,
        code_hash=projection.definition_hash(),
    )


def _alias_state(
    client: OpenSearch, index: IndexNames, when_absent: str
) -> tuple[dict[str, dict[str, Any]], str, list[str], list[str]]:
    """The layout, the index serving reads, the write targets and those being rebuilt (see ``_building``);
    IndexLayoutError ``{read alias} {when_absent}`` when no index serves reads yet."""
    layout = _layout(client, index)
    read, writes = _alias_targets(layout, index)
    if not read:
        raise IndexLayoutError(f"{index.read_alias} {when_absent}")
    return layout, read, writes, _building(index, read, writes)


def _building(index: IndexNames, read: str | None, writes: list[str]) -> list[str]:
    """Write targets newer than the read index: a rebuild in progress (older ones are kept for rollback)."""
    current = (index.generation_of(read) or 0) if read else 0
    return [name for name in writes if (index.generation_of(name) or 0) > current]


def _creation_body(
    projection: DocumentProjection, index: IndexNames, generation: int, read: bool
) -> dict[str, Any]:
    aliases: dict[str, Any] = {index.write_alias: {}}
    if read:
        aliases[index.read_alias] = {"filter": READ_FILTER}
    meta = {
        META_KEY: {
            "projection": projection.name,
            "definition_hash": projection.definition_hash(),
            "generation": generation,
        }
    }
    return {"mappings": {"_meta": meta}, "aliases": aliases}


def _layout(client: OpenSearch, index: IndexNames) -> dict[str, dict[str, Any]]:
    """Every physical index of the projection with its aliases, in one request."""
    found = _indexes_only(client.indices.get_alias(index=index.pattern, ignore=404))
    return {name: aliases for name, aliases in found.items() if index.generation_of(name) is not None}


def _indexes_only(response: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: body.get("aliases", {})
        for name, body in response.items()
        if isinstance(body, dict) and name not in ("error", "status")
    }


def _alias_targets(layout: dict[str, dict[str, Any]], index: IndexNames) -> tuple[str | None, list[str]]:
    reads = [name for name, aliases in layout.items() if index.read_alias in aliases]
    if len(reads) > 1:
        raise IndexLayoutError(f"read alias {index.read_alias} points at several indexes: {sorted(reads)}")
    writes = sorted(name for name, aliases in layout.items() if index.write_alias in aliases)
    return (reads[0] if reads else None), writes


def _newest(layout: dict[str, dict[str, Any]], index: IndexNames) -> str:
    return max(layout, key=lambda name: index.generation_of(name) or 0)


def _stored_hash(client: OpenSearch, physical: str) -> str | None:
    mapping: dict[str, Any] = client.indices.get_mapping(index=physical)
    first: dict[str, Any] = next(iter(mapping.values()), {})
    meta: dict[str, Any] = first.get("mappings", {}).get("_meta", {})
    found = meta.get(META_KEY, {}).get("definition_hash")
    return str(found) if found is not None else None
