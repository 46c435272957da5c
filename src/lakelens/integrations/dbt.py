"""dbt artifacts (`manifest.json`, `run_results.json`, `sources.json`) as lakelens events.

`import_artifacts("target")` reads what dbt wrote into its target directory and stores it in
one transaction. It needs only the JSON files, not dbt itself. Every id is derived from the
dbt invocation id and node unique id, so importing the same artifacts again changes nothing.

| dbt                                              | lakelens                                          |
|--------------------------------------------------|---------------------------------------------------|
| model / seed / snapshot                          | asset, kind "model" / "table" / "table"           |
| source `raw.orders`                              | asset `raw.orders`, kind "source"                 |
| exposure of type dashboard / any other type      | asset, kind "dashboard" / "external"              |
| `meta.owner`, `config.meta.owner`, group owner, exposure owner email (else name) | owner |
| `meta.layer`, a `layer:X` tag, else the first folder under models/ | layer           |
| tags (`team:x` becomes `team=x`, plain tags `tag=true`), materialization, relation | tags |
| source `freshness` warn_after (else error_after) | freshness SLA in seconds                          |
| `depends_on.nodes` of models, seeds, snapshots, exposures | lineage edges, source "dbt"              |
| documented columns (name, data_type)             | schema snapshot (stored when it changes)          |
| each compiled model's SQL (parsed by sqlglot, dbt_columns.py) | column mapping of its edges; `lakelens.column_lineage` tag |
| run_results.json invocation                      | run: id = invocation_id, job "dbt <command>"      |
| model / seed / snapshot result                   | materialization: status, execute-phase timing, rows_affected, error message |
| test / unit test result                          | check result on the tested node: severity, failures, message |
| sources.json result                              | run "dbt source freshness" and a `source_freshness` check on the source |

Name clashes: a node is named after its dbt name (versioned models `name.vN`). When two
nodes want the same name, the root project's node keeps it (models before seeds, snapshots,
sources, exposures) and the others become `package.name`, or their unique id when that is
taken too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakelens.errors import LakelensError
from lakelens.events import Batch
from lakelens.integrations.dbt_logs import log_callback
from lakelens.integrations.dbt_results import (
    _ASSET_RESOURCES,
    _MAX_NAME,
    _MAX_SHORT,
    FRESHNESS_CHECK,
    SOURCE,
    _cut,
    _dict,
    _freshness,
    _list,
    _run,
    _schema_hash,
    _sla,
    _text,
    _time,
)
from lakelens.model import (
    Asset,
    LineageEdge,
    SchemaSnapshot,
)

if TYPE_CHECKING:
    from lakelens.integrations.dbt_column_jobs import Ahead
    from lakelens.store import Store

__all__ = [
    "FRESHNESS_CHECK",
    "SOURCE",
    "DbtArtifactsError",
    "ImportResult",
    "import_artifacts",
    "log_callback",
]


# The oldest artifact schemas read: those of dbt 1.6 (manifest v10, run results v4, sources v3).
_MIN_VERSION = {"manifest": 10, "run-results": 4, "sources": 3, "catalog": 1}
_FILES = {
    "manifest": "manifest.json",
    "run-results": "run_results.json",
    "sources": "sources.json",
    "catalog": "catalog.json",
}
_SCHEMA_URL = re.compile(r"/dbt/([a-z-]+)/v(\d+)\.json$")

_KIND = {"model": "model", "seed": "table", "snapshot": "table"}
# Who keeps a contested name: models first, exposures last.
_PRIORITY = {"model": 0, "seed": 1, "snapshot": 2, "source": 3, "exposure": 4}
_MAX_LAYER = 128
_MAX_KIND = 32


class DbtArtifactsError(LakelensError):
    """The directory holds no dbt artifacts lakelens can read."""


@dataclass(frozen=True)
class ImportResult:
    """What one import stored (counts of events offered; repeated ones are stored once)."""

    target: str
    dbt_version: str | None
    manifest_version: int
    assets: int
    edges: int
    schemas: int
    runs: int
    materializations: int
    checks: int
    failed_checks: int
    warned_checks: int
    freshness: int
    stale_sources: int
    run_ids: list[str] = field(default_factory=list)
    new_run_ids: list[str] = field(default_factory=list)
    # Edges given a column mapping, and models whose column lineage is unresolved (why).
    column_edges: int = 0
    unresolved_columns: dict[str, str] = field(default_factory=dict)

    @property
    def already_imported(self) -> bool:
        """True when every run in the artifacts was in the store before this import."""
        return bool(self.run_ids) and not self.new_run_ids

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "already_imported": self.already_imported}


def import_artifacts(
    target_dir: str | Path,
    *,
    store: Store | None = None,
    progress: Callable[[str], None] | None = None,
    column_lineage: bool = True,
    workers: int | None = 1,
    ahead: Ahead | None = None,
) -> ImportResult:
    """Import a dbt target directory (manifest.json, plus run_results.json, sources.json and
    catalog.json when present) into `store` (default: the store configured by LAKELENS_* /
    lakelens.yaml). `column_lineage`: derive column lineage from the compiled SQL; `workers`:
    processes deriving it (None: one per core for a big project; a process pool starts by
    importing the caller's __main__, so a script must guard its top level to ask for one);
    `ahead`: column lineage derived ahead by `dbt_column_jobs.Ahead.begin` (the CLI's)."""
    say = progress or (lambda message: None)
    artifacts = _read(Path(target_dir), say)
    owned = store is None
    if store is None:
        from lakelens.store import Store

        store = Store()
    try:
        say("Converting dbt artifacts")
        converted = _convert(artifacts)
        if column_lineage:
            from lakelens.integrations.dbt_columns import add_column_lineage

            converted.unresolved = add_column_lineage(
                converted.batch,
                artifacts.manifest,
                converted.names,
                catalog=artifacts.docs.get("catalog"),
                store=store,
                say=say,
                workers=workers,
                ahead=ahead,
            )
        batch = converted.batch
        run_ids = [run.run_id for run in batch.runs]
        known = _known_runs(store, run_ids)
        say(f"Writing {len(batch)} events to {store.location}")
        store.write(batch)
        if converted.loads:
            _record_loads(store, converted.loads)
    finally:
        if owned:
            store.close()
    tests = [c for c in batch.checks if "dbt.test_type" in c.attributes]
    freshness = [c for c in batch.checks if "dbt.test_type" not in c.attributes]
    return ImportResult(
        target=str(artifacts.target),
        dbt_version=_text(artifacts.manifest["metadata"].get("dbt_version")),
        manifest_version=artifacts.versions["manifest"],
        assets=len(batch.assets),
        edges=len(batch.edges),
        schemas=len(batch.schemas),
        runs=len(batch.runs),
        materializations=len(batch.materializations),
        checks=len(tests),
        failed_checks=sum(not c.passed and c.severity != "warning" for c in tests),
        warned_checks=sum(not c.passed and c.severity == "warning" for c in tests),
        freshness=len(freshness),
        stale_sources=sum(c.attributes.get("dbt.status") in ("warn", "error") for c in freshness),
        run_ids=run_ids,
        new_run_ids=[r for r in run_ids if r not in known],
        column_edges=sum(e.columns is not None for e in batch.edges),
        unresolved_columns=converted.unresolved,
    )


# -- reading --------------------------------------------------------------------------------


@dataclass
class _Artifacts:
    target: Path
    docs: dict[str, dict[str, Any]]  # by kind: manifest, run-results, sources (when written)
    versions: dict[str, int]

    @property
    def manifest(self) -> dict[str, Any]:
        return self.docs["manifest"]


def _read(path: Path, say: Callable[[str], None]) -> _Artifacts:
    if not path.exists():
        raise DbtArtifactsError(
            f"{path} does not exist: pass the target/ directory of a dbt project."
        )
    if path.is_file():
        path = path.parent
    if not (path / "manifest.json").is_file() and (path / "target" / "manifest.json").is_file():
        path = path / "target"
    if not (path / "manifest.json").is_file():
        raise DbtArtifactsError(
            f"No manifest.json in {path}: pass the target/ directory of a dbt project, "
            "after a dbt command (dbt build, run, test or parse) has written it."
        )
    artifacts = _Artifacts(path, {}, {})
    for kind, filename in _FILES.items():
        if (path / filename).is_file():
            say(f"Reading {filename}")
            artifacts.docs[kind], artifacts.versions[kind] = _load(path / filename, kind)
    return artifacts


def _load(file: Path, kind: str) -> tuple[dict[str, Any], int]:
    """The JSON of one artifact and its schema version, checked to be the artifact expected."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DbtArtifactsError(f"Cannot read {file}: {exc}.") from None
    except ValueError as exc:
        raise DbtArtifactsError(
            f"{file} is not valid JSON ({exc}); re-run dbt to write it again."
        ) from None
    metadata = _dict(data.get("metadata") if isinstance(data, dict) else None)
    url = metadata.get("dbt_schema_version")
    match = _SCHEMA_URL.search(url) if isinstance(url, str) else None
    if match is None or match.group(1) != kind:
        raise DbtArtifactsError(
            f"{file} is not a dbt {kind.replace('-', ' ')} artifact "
            f"(metadata.dbt_schema_version is {url!r}); pass a dbt target/ directory."
        )
    version = int(match.group(2))
    if version < _MIN_VERSION[kind]:
        raise DbtArtifactsError(
            f"{file} uses the dbt {kind.replace('-', ' ')} schema v{version} "
            f"(dbt {metadata.get('dbt_version', '?')}); lakelens reads v{_MIN_VERSION[kind]} "
            "and later (dbt 1.6+): upgrade dbt-core and run dbt again."
        )
    needed = (
        ("nodes", "sources") if kind in ("manifest", "catalog") else ("results", "invocation_id")
    )
    missing = [key for key in needed if key not in data and key not in metadata]
    if missing:
        raise DbtArtifactsError(f"{file} is not a complete dbt artifact: no {missing[0]}.")
    return data, version


# -- conversion -----------------------------------------------------------------------------


@dataclass
class _Converted:
    batch: Batch = field(default_factory=Batch)
    # Source asset → its newest load (max_loaded_at) seen by dbt source freshness.
    loads: dict[str, float] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # unique_id → asset name
    unresolved: dict[str, str] = field(default_factory=dict)  # model → why no column lineage


def _convert(artifacts: _Artifacts) -> _Converted:
    manifest = artifacts.manifest
    out = _Converted()
    names = out.names = _asset_names(manifest)
    generated = _time(manifest["metadata"].get("generated_at"))
    _assets(manifest, names, generated, out.batch)
    if "run-results" in artifacts.docs:
        _run(artifacts.docs["run-results"], manifest, names, out)
    if "sources" in artifacts.docs:
        _freshness(artifacts.docs["sources"], manifest, names, out)
    invocation = manifest["metadata"].get("invocation_id")
    if any(run.run_id == invocation for run in out.batch.runs):
        for snapshot in out.batch.schemas:
            snapshot.run_id = invocation  # the manifest was written by an imported run
    return out


def _nodes(manifest: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any], str]]:
    """(unique_id, node, resource type) of everything that becomes an asset."""
    for uid, node in _dict(manifest.get("nodes")).items():
        if isinstance(node, dict) and node.get("resource_type") in _ASSET_RESOURCES:
            yield uid, node, node["resource_type"]
    for key, kind in (("sources", "source"), ("exposures", "exposure")):
        for uid, node in _dict(manifest.get(key)).items():
            if isinstance(node, dict):
                yield uid, node, kind


def _asset_names(manifest: dict[str, Any]) -> dict[str, str]:
    """unique_id → asset name, resolving clashes as the module docstring says."""
    root = manifest["metadata"].get("project_name")
    wanted: dict[str, list[tuple[str, str, str]]] = {}
    for uid, node, kind in _nodes(manifest):
        name = _text(node.get("name")) or uid.rpartition(".")[2]
        if kind == "source":
            name = f"{_text(node.get('source_name')) or '?'}.{name}"
        elif kind == "model" and node.get("version") is not None:
            name = f"{name}.v{node['version']}"
        package = _text(node.get("package_name")) or ""
        wanted.setdefault(name, []).append((uid, package, kind))
    names: dict[str, str] = {}
    taken = set(wanted)
    for name, claims in sorted(wanted.items()):
        claims.sort(key=lambda c: (c[1] != root, _PRIORITY[c[2]], c[0]))
        names[claims[0][0]] = name
        for uid, package, _kind in claims[1:]:
            alternative = f"{package}.{name}"
            if alternative in taken:
                alternative = uid
            taken.add(alternative)
            names[uid] = alternative
    return {uid: _cut(name, _MAX_NAME) for uid, name in names.items()}


def _assets(
    manifest: dict[str, Any], names: dict[str, str], generated: datetime | None, batch: Batch
) -> None:
    groups = _dict(manifest.get("groups"))
    for uid, node, kind in _nodes(manifest):
        name = names[uid]
        batch.assets.append(_asset(uid, node, kind, name, groups, generated))
        for dependency in _list(_dict(node.get("depends_on")).get("nodes")):
            if dependency in names and dependency != uid:
                batch.edges.append(
                    LineageEdge(names[dependency], name, source=SOURCE, updated_at=generated)
                )
        columns = [
            (_text(column.get("name")) or key, _text(column.get("data_type")) or "")
            for key, column in _dict(node.get("columns")).items()
            if isinstance(column, dict)
        ]
        if columns:
            batch.schemas.append(
                SchemaSnapshot(name, columns, time=generated, hash=_schema_hash(columns))
            )


# The YAML descriptions of a node's columns, as JSON {column: description} in one tag (the
# asset page shows them beside the schema); cut to fit a tag.
COLUMN_DESCRIPTIONS_TAG = "dbt.column_descriptions"
_MAX_DESCRIBED_CHARS = 16_000


def column_descriptions(node: dict[str, Any]) -> str | None:
    found: dict[str, str] = {}
    for key, column in _dict(node.get("columns")).items():
        if not isinstance(column, dict):
            continue
        text = _text(column.get("description"))
        if text:
            found[_text(column.get("name")) or key] = text[:500]
    if not found:
        return None
    encoded = json.dumps(found, separators=(",", ":"), ensure_ascii=False)
    while len(encoded) > _MAX_DESCRIBED_CHARS and found:
        found.pop(next(reversed(found)))
        encoded = json.dumps(found, separators=(",", ":"), ensure_ascii=False)
    return encoded if found else None


def _asset(
    uid: str,
    node: dict[str, Any],
    kind: str,
    name: str,
    groups: dict[str, Any],
    generated: datetime | None,
) -> Asset:
    config = _dict(node.get("config"))
    meta = {**_dict(node.get("meta")), **_dict(config.get("meta"))}
    tags = _tags([*_list(node.get("tags")), *_list(config.get("tags"))])
    tags["dbt.unique_id"] = uid
    tags["dbt.resource_type"] = kind
    extra = {
        "dbt.package": node.get("package_name"),
        "dbt.materialized": config.get("materialized"),
        "dbt.relation": node.get("relation_name"),
        "dbt.url": node.get("url"),
        "dbt.maturity": node.get("maturity"),
    }
    tags.update({key: value for key, value in extra.items() if isinstance(value, str) and value})
    described = column_descriptions(node)
    if described:
        tags[COLUMN_DESCRIPTIONS_TAG] = described
    group = _text(node.get("group")) or _text(config.get("group"))
    owner = _owner(meta.get("owner"))
    if kind == "exposure":
        contact = _dict(node.get("owner"))
        owner = owner or _text(contact.get("email")) or _text(contact.get("name"))
        tags["dbt.exposure_type"] = _text(node.get("type")) or "unknown"
        asset_kind = "dashboard" if node.get("type") == "dashboard" else "external"
    else:
        asset_kind = _KIND.get(kind, kind)
    if owner is None and group is not None:
        found = [g for g in groups.values() if isinstance(g, dict) and g.get("name") == group]
        contact = _dict(found[0].get("owner")) if found else {}
        owner = _text(contact.get("email")) or _text(contact.get("name"))
    layer = _text(meta.get("layer")) or tags.get("layer")
    if layer is None and kind in _ASSET_RESOURCES:
        folders = re.split(r"[\\/]", _text(node.get("path")) or "")[:-1]
        layer = folders[0] if folders else None
    freshness = None
    if kind == "source":
        freshness = _sla(node.get("freshness") or config.get("freshness"))[0]
    return Asset(
        name=name,
        kind=_cut(asset_kind, _MAX_KIND),
        owner=_cut(owner, _MAX_SHORT),
        layer=_cut(layer, _MAX_LAYER),
        group=_cut(group, _MAX_SHORT),
        description=_text(node.get("description")),
        freshness_seconds=freshness,
        # Only what meta says: a model without meta.critical leaves what another source set.
        critical=meta["critical"] if isinstance(meta.get("critical"), bool) else None,
        tags=tags,
        updated_at=generated,
    )


def _owner(value: Any) -> str | None:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v) or None
    return _text(value)


def _tags(values: list[Any]) -> dict[str, str]:
    """dbt tags as lakelens tags: `team:finance` → team=finance, `pii` → pii=true."""
    tags: dict[str, str] = {}
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        key, sep, rest = value.partition(":")
        if not sep:
            key, sep, rest = value.partition("=")
        if sep and key and rest:
            tags[key] = rest
        else:
            tags[value] = "true"
    return tags


# -- the store ------------------------------------------------------------------------------


def _known_runs(store: Store, run_ids: list[str]) -> set[str]:
    if not run_ids:
        return set()
    import sqlalchemy as sa

    from lakelens.store import schema

    runs = schema.runs
    with store.connect() as conn:
        return set(
            conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id.in_(run_ids))).scalars()
        )


def _record_loads(store: Store, loads: dict[str, float]) -> None:
    """Move each source's last success to its newest load dbt saw (max_loaded_at), never back.

    Sources are not materialized by anything lakelens watches, so this is what gives them an
    age: lineage shows it against the SLA, and the freshness alert rule fires between dbt runs.
    """
    import sqlalchemy as sa

    from lakelens.store import schema

    assets = schema.assets
    statement = (
        sa.update(assets)
        .where(
            assets.c.name == sa.bindparam("asset"),
            sa.or_(
                assets.c.last_success_time.is_(None),
                assets.c.last_success_time < sa.bindparam("loaded"),
            ),
        )
        .values(last_success_time=sa.bindparam("loaded"))
    )
    with store.engine.begin() as conn:
        conn.execute(statement, [{"asset": a, "loaded": t} for a, t in sorted(loads.items())])
