"""`logs --grep` on PostgreSQL reads today's logs first (scanned, in lower()'s cheaper scan
form) and the ended days only when the page is not full: the same rows as one scan."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from lakelens.events import Batch
from lakelens.store import Store
from lakelens.store.log_search import pg_scan_lower

pytestmark = pytest.mark.postgres

DAY = 86400
NOW = time.time()
MESSAGES = [
    "job failed: Timeout after 30s",
    "ÉCHEC: TIMEOUT après 30 s",  # not ASCII: lower() as it is
    "\u212aelvin sign, then timeout",  # KELVIN SIGN: lower() makes it an ASCII 'k'
    "nothing to see",
    "read time out",
]


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    store = Store(pg_url)
    store.maintain_partitions(now=NOW - 3 * DAY)
    batch = Batch()
    for days_ago in (3, 1, 0):
        for i, message in enumerate(MESSAGES * 4):
            at = NOW - days_ago * DAY - i
            attributes = '{"error": "ReadTimeoutError"}' if i == 3 else None
            batch.logs.append((at, 20, message, None, "r", "a", "j", None, None, attributes))
    store.write(batch)
    store.index_ended_days(now=NOW)
    yield store
    store.close()


@pytest.mark.parametrize("grep", ["timeout", "TIMEOUT", "échec", "kelvin", "t o", "zzz"])
@pytest.mark.parametrize("limit", [1, 5, 12, 1000])
def test_today_first_finds_what_one_scan_finds(
    store: Store, grep: str, limit: int, grep_as_scan: Callable[..., list[int]]
) -> None:
    scanned = grep_as_scan(store, grep, limit, since=NOW - 7 * DAY)
    if grep == "kelvin":
        assert len(scanned) == min(limit, 3 * 4)  # lower() folded the sign, as one scan does


def test_the_scan_form_of_lower_is_lower(store: Store) -> None:
    texts = [*MESSAGES, "İstanbul", "ABC-xyz_09 !", "", None]
    with store.reader() as db:
        for text in texts:
            same = db.value(
                f"SELECT {pg_scan_lower('t')} IS NOT DISTINCT FROM lower(t) "
                "FROM (SELECT CAST(:text AS text) AS t) AS v",
                {"text": text},
            )
            assert same is True, text
