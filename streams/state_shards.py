"""A nested state written as many small table entries instead of one value, and only what changed.

The alerting service's state (`alerts.service.AlertingService.state()`: the dispatcher's groups, active
incidents and escalations, the notifier's pending jobs, sent ids and threads) grows with the number of open
incidents and owed notifications. Written as one changelog value per partition it passed Kafka's 1 MiB
message limit under load (a worker crashed with `MessageSizeTooLargeError` at about 200 open incidents), and
every change rewrote all of it. Here each member of a section's mapping (a group, an incident, a job) is its
own entry, so an entry is as big as one member, and a save writes the entries that changed and deletes the
ones that went away.

Layout of `state`: a mapping of sections (e.g. "dispatcher"), each a mapping of fields; a field that is a
mapping is stored member by member (`section/field/d/<key>`), a list of mappings that all carry a "key" is
stored item by item (`section/field/l/<id>`, the id being its "key", or its integer "seq" zero-padded; the
list comes back ordered by id: the loader must not need another order), anything else whole
(`section/field`). `unshard(shards(state)) == state` up to that list order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crisiswatch.streams.replay import dump_line

MEMBER = "/d/"  # section/field/d/<member key>
ITEM = "/l/"  # section/field/l/<item id>


def shards(state: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `state`: flat key -> JSON-compatible value."""
    out: dict[str, Any] = {}
    for section, fields in state.items():
        if not isinstance(fields, Mapping):
            out[section] = fields
            continue
        out[section] = {}  # the section exists even when empty
        for name, value in fields.items():
            path = f"{section}/{name}"
            if isinstance(value, Mapping):
                out[path] = {}  # the field exists even when empty
                for key, member in value.items():
                    out[f"{path}{MEMBER}{key}"] = member
            elif isinstance(value, list) and value and (ids := _item_ids(value)) is not None:
                out[path] = []
                for item_id, item in zip(ids, value, strict=True):
                    out[f"{path}{ITEM}{item_id}"] = item
            else:
                out[path] = value
    return out


def _item_ids(items: list[Any]) -> list[str] | None:
    """Distinct ids of a list's items (their "key", or their integer "seq"), or None if they have none."""
    ids: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            return None
        key, seq = item.get("key"), item.get("seq")
        if isinstance(key, str) and key:
            ids.append(key)
        elif isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
            ids.append(f"{seq:012d}")
        else:
            return None
    return ids if len(set(ids)) == len(ids) else None


def unshard(entries: Mapping[str, Any]) -> dict[str, Any]:
    """The state back from its entries (members and items found by their key's marker)."""
    state: dict[str, Any] = {}
    members: list[tuple[str, str, str, Any]] = []
    items: list[tuple[str, str, str, Any]] = []
    for key, value in entries.items():
        parts = key.split("/", 3)  # section and field names have no "/"; member keys may
        if len(parts) == 4 and parts[2] == "d":
            members.append((parts[0], parts[1], parts[3], value))
        elif len(parts) == 4 and parts[2] == "l":
            items.append((parts[0], parts[1], parts[3], value))
        elif len(parts) == 1:
            if value == {}:
                state.setdefault(key, {})  # a section's marker (its fields may come first)
            else:
                state[key] = value
        else:
            section, name = key.split("/", 1)
            state.setdefault(section, {})[name] = value
    for section, name, member, value in members:
        state.setdefault(section, {}).setdefault(name, {})[member] = value
    for section, name, _, value in sorted(items, key=lambda entry: entry[2]):
        state.setdefault(section, {}).setdefault(name, []).append(value)
    return state


def changes(
    previous: Mapping[str, str], entries: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, Any], list[str]]:
    """Against what was last written (`previous`: key -> JSON text): (the new key -> JSON text, the entries
    to write, the keys to delete)."""
    encoded = {key: dump_line(value) for key, value in entries.items()}
    write = {key: entries[key] for key, text in encoded.items() if previous.get(key) != text}
    delete = [key for key in previous if key not in encoded]
    return encoded, write, delete
