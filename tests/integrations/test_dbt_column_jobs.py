"""The head start `lakelens import dbt` forks to derive column lineage while it imports.

Its results are taken only where the task the import would run is the very same one; the
import derives the rest itself, and the answer is always the one it would find alone. Each
case runs in a fresh interpreter: a head start is forked only from a single-threaded process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlglot")

SCRIPT = """
import json, sys
from pathlib import Path

from lakelens.integrations import dbt_columns
from lakelens.integrations.dbt_column_jobs import Ahead

target, case = Path(sys.argv[1]), sys.argv[2]
manifest = json.loads((target / "manifest.json").read_text())
names = {u: n["name"] for key in ("nodes", "sources") for u, n in manifest[key].items()}
# The store knows a source's columns the artifacts do not list: a different task for its readers.
known = (lambda assets: {"s0": [["id", "amount", "status", "extra"]]}) if case == "store" else None
alone = dbt_columns.derive(manifest, names, known=known)
local = []
real = dbt_columns.derive_one

def counting(task):
    local.append(task.uid)
    return real(task)

dbt_columns.derive_one = counting
ahead = Ahead.begin(target if case != "unreadable" else target / "nothing", 2)
got = dbt_columns.derive(manifest, names, known=known, ahead=ahead)
print(json.dumps({
    "ahead": ahead is not None,
    "local": local,
    "same": [got.edges == alone.edges, got.outputs == alone.outputs,
             got.unresolved == alone.unresolved, got.fingerprints == alone.fingerprints],
    "edges": len(got.edges),
}))
"""


def _target(tmp_path: Path, models: int = 40) -> Path:
    """A dbt target/ with three sources and `models` models reading one to three earlier ones."""
    sources = {
        f"source.p.raw.s{i}": {
            "resource_type": "source",
            "name": f"s{i}",
            "relation_name": f'"wh"."raw"."s{i}"',
            "columns": {c: {"name": c} for c in ("id", "amount", "status")},
        }
        for i in range(3)
    }
    nodes: dict[str, Any] = {}
    ids = list(sources)
    relations = {uid: node["relation_name"] for uid, node in sources.items()}
    for m in range(models):
        parents = [ids[m % len(ids)], ids[(m * 7 + 1) % len(ids)]][: 1 + m % 2]
        sql = f"select p0.* from {relations[parents[0]]} p0"
        if m % 4:
            joins = "".join(
                f" join {relations[p]} p{i} on p0.id = p{i}.id"
                for i, p in enumerate(parents[1:], 1)
            )
            sql = (
                f"with b as (select p0.id, p0.amount * 2 as amount, p{len(parents) - 1}.status "
                f"from {relations[parents[0]]} p0{joins}) select id, sum(amount) as amount, status "
                "from b group by id, status"
            )
        uid = f"model.p.m{m}"
        relations[uid] = f'"wh"."main"."m{m}"'
        nodes[uid] = {
            "resource_type": "model",
            "name": f"m{m}",
            "relation_name": relations[uid],
            "depends_on": {"nodes": sorted(set(parents))},
            "compiled_code": sql,
        }
        ids.append(uid)
    target = tmp_path / "target"
    target.mkdir()
    manifest = {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
            "adapter_type": "duckdb",
        },
        "nodes": nodes,
        "sources": sources,
    }
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def _run(target: Path, case: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(target), case],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="the head start forks: Linux only")
def test_the_import_takes_every_model_from_the_head_start_of_a_fresh_project(
    tmp_path: Path,
) -> None:
    found = _run(_target(tmp_path), "fresh")
    assert found["ahead"] is True
    assert found["local"] == []  # nothing derived twice
    assert found["same"] == [True] * 4 and found["edges"] > 40


@pytest.mark.skipif(sys.platform != "linux", reason="the head start forks: Linux only")
def test_models_whose_inputs_the_head_start_did_not_know_are_derived_again(
    tmp_path: Path,
) -> None:
    """The store knows s0's columns (the artifacts only document three): every model reading
    s0, and what reads those, gets a different task from the import, derived by it."""
    target = _target(tmp_path)
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    readers = {u for u, n in nodes.items() if "source.p.raw.s0" in n["depends_on"]["nodes"]}
    found = _run(target, "store")
    assert found["same"] == [True] * 4
    assert readers and readers <= set(found["local"])
    assert len(found["local"]) < len(nodes)  # the others were taken from the head start


@pytest.mark.skipif(sys.platform != "linux", reason="the head start forks: Linux only")
def test_a_head_start_that_cannot_read_the_artifacts_changes_nothing(tmp_path: Path) -> None:
    found = _run(_target(tmp_path), "unreadable")
    assert found["ahead"] is True
    assert len(found["local"]) == 40
    assert found["same"] == [True] * 4


def test_a_busy_machine_derives_in_the_importing_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a load of one more than the cores no head start is forked (unless jobs are asked
    for) and no pool started: the kernel would run the processes one after the other."""
    from lakelens.integrations import dbt_column_jobs

    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 1.0, 0.0, 0.0))
    assert dbt_column_jobs.busy()
    assert dbt_column_jobs.Ahead.begin(_target(tmp_path), None) is None
    pooled: list[int] = []
    monkeypatch.setattr(dbt_column_jobs, "POOL_FROM", 1)
    monkeypatch.setattr(dbt_column_jobs, "_in_pool", lambda *args: pooled.append(1))
    from lakelens.integrations import dbt_columns

    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    names = {u: n["name"] for key in ("nodes", "sources") for u, n in manifest[key].items()}
    found = dbt_columns.derive(manifest, names, workers=None)
    assert len(found.outputs) + len(found.unresolved) == 40
    assert pooled == []
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 0.5, 0.0, 0.0))
    assert not dbt_column_jobs.busy()


def test_the_column_lineage_tag_is_the_one_the_analysis_reads() -> None:
    from lakelens.analysis import column_lineage
    from lakelens.integrations import dbt_columns

    assert dbt_columns.COLUMN_LINEAGE_TAG == column_lineage.COLUMN_LINEAGE_TAG


def test_the_collector_runs_less_often_while_deriving_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from lakelens.integrations import dbt_columns

    manifest = json.loads((_target(tmp_path) / "manifest.json").read_text())
    names = {u: n["name"] for key in ("nodes", "sources") for u, n in manifest[key].items()}
    before = gc.get_threshold()
    seen: list[int] = []
    real = dbt_columns.derive_one

    def recording(task: Any, own: bool = True) -> Any:
        seen.append(gc.get_threshold()[0])
        return real(task, own)

    monkeypatch.setattr(dbt_columns, "derive_one", recording)
    dbt_columns.derive(manifest, names, workers=1)
    assert seen and min(seen) >= 20_000
    assert gc.get_threshold() == before
