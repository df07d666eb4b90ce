"""The upstream example's driver, and the other ways Python users call the same tasks.

Upstream (ranking-challenge, examples/worker_sqlite_redis/worker.py) imported the tasks
from ``tasks.py`` and called ``.delay(...).get()`` on them; this does the same, then tries
keyword and mixed arguments, ``send_task`` with both upstream naming schemes,
``AsyncResult`` polling, a result that arrives while ``.get()`` already waits, and reads
the stored ``celery-task-meta-<id>`` record and its TTL.

Environment: see tasks.py; also ``RESULT_KEY`` (where count_top_named_entities writes,
default ``driver:top_named_entities``) and ``GET_TIMEOUT`` (seconds, default 30).
"""

import json
import os
import time

from celery.result import AsyncResult

import scenario
from scenario import FROM, TO
from tasks import app, count_top_named_entities, query_posts_db, substring_matches_by_platform

GET_TIMEOUT = scenario.env_float("GET_TIMEOUT", 30.0)

COUNTS_SQL = (
    "SELECT platform, type, COUNT(*) FROM posts GROUP BY platform, type ORDER BY platform, type"
)
# Long enough (a few hundred ms) that the result is stored after `.get()` has done its
# first GET and waits on pub/sub: only the worker's PUBLISH can wake it.
SLOW_SQL = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 3000000) "
    "SELECT COUNT(*) FROM n"
)


def poll_until_ready(task_id, deadline_s):
    """scorer_advanced's style: a fresh AsyncResult, `.ready()` every 10 ms."""
    result = AsyncResult(task_id, app=app)
    started = time.monotonic()
    states_seen = []
    polls = 0
    while True:
        state = result.state
        if not states_seen or states_seen[-1] != state:
            states_seen.append(state)
        if result.ready() or time.monotonic() - started > deadline_s:
            break
        polls += 1
        time.sleep(0.01)
    value = result.result
    if isinstance(value, BaseException):
        value = scenario.describe_exception(value)
    return {
        "ready": result.ready(),
        "successful": result.successful(),
        "state": result.state,
        "states_seen": states_seen,
        "result": value,
        "polls": polls,
        "elapsed_ms": scenario.elapsed_ms(started),
    }


def main():
    scenario.warm_up(app)
    redis_client = scenario.broker_redis()
    result_key = os.environ.get("RESULT_KEY") or "driver:top_named_entities"
    redis_client.delete(result_key)
    observed = {}

    # The upstream driver, call for call.
    observed["query"] = scenario.attempt(
        lambda: query_posts_db.delay(COUNTS_SQL).get(timeout=GET_TIMEOUT)
    )
    observed["substring_positional"] = scenario.attempt(
        lambda: substring_matches_by_platform.delay("trump", FROM, TO).get(timeout=GET_TIMEOUT)
    )
    observed["top_entities"] = scenario.attempt(
        lambda: count_top_named_entities.delay(10, FROM, TO, result_key).get(timeout=10)
    )
    stored_report = redis_client.get(result_key)
    observed["top_entities_key"] = None if stored_report is None else json.loads(stored_report)

    # The same tasks called the other ways Python code calls them.
    observed["substring_keywords"] = scenario.attempt(
        lambda: substring_matches_by_platform.delay(match="trump", from_=FROM, to=TO).get(
            timeout=GET_TIMEOUT
        )
    )
    observed["substring_mixed"] = scenario.attempt(
        lambda: substring_matches_by_platform.delay("trump", from_=FROM, to=TO).get(
            timeout=GET_TIMEOUT
        )
    )
    observed["substring_send_task"] = scenario.attempt(
        lambda: app.send_task(
            "tasks.substring_matches_by_platform", args=["trump", FROM, TO]
        ).get(timeout=GET_TIMEOUT)
    )
    observed["substring_sandbox_name"] = scenario.attempt(
        lambda: app.send_task(
            "sandbox_worker.tasks.substring_matches_by_platform",
            kwargs={"match": "trump", "from_": FROM, "to": TO},
        ).get(timeout=GET_TIMEOUT)
    )
    observed["query_sandbox_name"] = scenario.attempt(
        lambda: app.send_task(
            "sandbox_worker.tasks.query_posts_db", kwargs={"query": COUNTS_SQL}
        ).get(timeout=GET_TIMEOUT)
    )
    observed["slow_query"] = scenario.attempt(
        lambda: query_posts_db.delay(SLOW_SQL).get(timeout=GET_TIMEOUT)
    )

    observed["polling"] = poll_until_ready(query_posts_db.delay("SELECT 6 * 7").id, GET_TIMEOUT)
    observed["polling_slow"] = poll_until_ready(query_posts_db.delay(SLOW_SQL).id, GET_TIMEOUT)

    stored = query_posts_db.delay("SELECT 'stored', 1.5, NULL")
    observed["stored"] = scenario.call_and_inspect(stored, GET_TIMEOUT)

    scenario.report(observed)


if __name__ == "__main__":
    main()
