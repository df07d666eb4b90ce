"""Bad input and refused work, as a Python caller meets them.

Each case sends one task and records what ``.get()`` raised (class name, module, which
``except`` clauses would catch it), how long that took, ``result.state``, whether
``result.traceback`` is a string, and the raw ``celery-task-meta-<id>`` record. Afterwards
the worker must still answer, and the posts table must be intact.

Environment: see tasks.py; ``GET_TIMEOUT`` (seconds, default 30) bounds each wait except
the unknown task's, which must fail within ``UNKNOWN_TASK_TIMEOUT`` (default 1).
"""

import datetime

import scenario
from scenario import FROM, TO
from tasks import app, query_posts_db, substring_matches_by_platform

GET_TIMEOUT = scenario.env_float("GET_TIMEOUT", 30.0)
UNKNOWN_TASK_TIMEOUT = scenario.env_float("UNKNOWN_TASK_TIMEOUT", 1.0)

# Minutes of work for SQLite: only the time limit stops it.
ENDLESS_SQL = (
    "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 10000000000) "
    "SELECT COUNT(*) FROM n"
)


def an_hour_ago():
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)


CASES = {
    "bad_sql": (lambda: query_posts_db.delay("SELECT * FROM no_such_table"), GET_TIMEOUT),
    "non_select": (lambda: query_posts_db.delay("DELETE FROM posts"), GET_TIMEOUT),
    "from_after_to": (lambda: substring_matches_by_platform.delay("trump", TO, FROM), GET_TIMEOUT),
    "wrong_type": (lambda: substring_matches_by_platform.delay(5, FROM, TO), GET_TIMEOUT),
    # `.delay()` checks arguments against the stub's signature; a caller by name does not.
    "missing_argument": (
        lambda: app.send_task("tasks.substring_matches_by_platform", args=["trump"]),
        GET_TIMEOUT,
    ),
    "unknown_task": (
        lambda: app.send_task("tasks.no_such_task", args=[1]),
        UNKNOWN_TASK_TIMEOUT,
    ),
    "expired": (
        lambda: query_posts_db.apply_async(args=["SELECT 1"], expires=an_hour_ago()),
        GET_TIMEOUT,
    ),
    "time_limit": (
        lambda: query_posts_db.apply_async(args=[ENDLESS_SQL], time_limit=1),
        GET_TIMEOUT,
    ),
}


def main():
    scenario.warm_up(app)
    observed = {}
    for name, (send, timeout) in CASES.items():
        observed[name] = scenario.call_and_inspect(send(), timeout)

    # Work the worker must still do after all of the above.
    observed["expires_in_future"] = scenario.call_and_inspect(
        query_posts_db.apply_async(args=["SELECT 8"], expires=60), GET_TIMEOUT
    )
    observed["rows_after"] = scenario.attempt(
        lambda: query_posts_db.delay("SELECT COUNT(*) FROM posts").get(timeout=GET_TIMEOUT)
    )
    scenario.report(observed)


if __name__ == "__main__":
    main()
