"""Canvas as Python users build it: groups (waited on with ``.get()`` and polled member by
member, as upstream's scorer_basic and scorer_advanced do), ``GroupResult.save()`` and
``restore()``, chains, ``link``/``link_error`` callbacks and a chord.

Every wait has a timeout, so a worker that ignores part of a message shows up as an
error in the report, never as a hang.

Environment: see tasks.py; also ``GROUP_RUNS`` (default 5), ``GROUP_TIMEOUT`` (seconds
for a 100-task group's ``.get()``, default 1 as upstream), ``POLL_DEADLINE`` (seconds the
polling loop runs, default 1 as upstream), ``GET_TIMEOUT`` (default 30) and
``CHORD_TIMEOUT`` (default 5).
"""

import os
import time
import uuid

from celery import chain, chord, group
from celery.result import AsyncResult, GroupResult

import scenario
from scenario import FROM, TO
from tasks import app, query_posts_db, substring_matches_by_platform

GROUP_SIZE = 100
GROUP_RUNS = int(os.environ.get("GROUP_RUNS") or 5)
GROUP_TIMEOUT = scenario.env_float("GROUP_TIMEOUT", 1.0)
POLL_DEADLINE = scenario.env_float("POLL_DEADLINE", 1.0)
GET_TIMEOUT = scenario.env_float("GET_TIMEOUT", 30.0)
CHORD_TIMEOUT = scenario.env_float("CHORD_TIMEOUT", 5.0)

BAD_SQL = "SELECT * FROM no_such_table"


def numbered_group(size):
    """`size` tasks by name, member i answering [[i]], so order and pairing are checked."""
    return group(
        app.signature("tasks.query_posts_db", args=["SELECT {}".format(i)]) for i in range(size)
    )


def expected_values(size):
    return [[[i]] for i in range(size)]


def group_get_runs():
    runs = []
    for _ in range(GROUP_RUNS):
        result = numbered_group(GROUP_SIZE).apply_async()
        outcome = scenario.attempt(lambda: result.get(timeout=GROUP_TIMEOUT))
        run = {"ok": outcome["ok"], "elapsed_ms": outcome["elapsed_ms"]}
        if outcome["ok"]:
            run["values_match"] = outcome["value"] == expected_values(GROUP_SIZE)
        else:
            run["error"] = outcome["error"]
        runs.append(run)
    return runs


def group_polled():
    """scorer_advanced: `.ready()` on every member every 20 ms until the deadline."""
    result = numbered_group(GROUP_SIZE).apply_async()
    started = time.monotonic()
    pending = dict(enumerate(result.results))
    collected = {}
    while pending and time.monotonic() - started < POLL_DEADLINE:
        for index, member in list(pending.items()):
            if member.ready():
                collected[index] = member.result
                del pending[index]
        time.sleep(0.02)
    return {
        "collected": len(collected),
        "missing": len(pending),
        "wrong": sorted(i for i, value in collected.items() if value != [[i]]),
        "elapsed_ms": scenario.elapsed_ms(started),
    }


def group_saved_and_restored():
    result = numbered_group(5).apply_async()
    result.save()
    restored = GroupResult.restore(result.id, app=app)
    if restored is None:
        return {"restored": False}
    return {
        "restored": True,
        "same_members": [m.id for m in restored.results] == [m.id for m in result.results],
        "get": scenario.attempt(lambda: restored.get(timeout=GET_TIMEOUT)),
    }


def chain_of_immutables():
    result = chain(
        query_posts_db.si("SELECT 1"),
        query_posts_db.si("SELECT 2"),
        substring_matches_by_platform.si("trump", FROM, TO),
    ).apply_async()
    observed = scenario.attempt(lambda: result.get(timeout=GET_TIMEOUT))
    observed["parents"] = [
        scenario.attempt(lambda: result.parent.get(timeout=GET_TIMEOUT)),
        scenario.attempt(lambda: result.parent.parent.get(timeout=GET_TIMEOUT)),
    ]
    return observed


def chain_passing_result():
    """The first result ([[1]]) becomes the second task's `match`: a TypeError there."""
    result = chain(
        query_posts_db.s("SELECT 1"), substring_matches_by_platform.s(FROM, TO)
    ).apply_async()
    return scenario.call_and_inspect(result, GET_TIMEOUT)


def chain_with_failing_first_step():
    result = chain(query_posts_db.si(BAD_SQL), query_posts_db.si("SELECT 2")).apply_async()
    observed = scenario.attempt(lambda: result.get(timeout=GET_TIMEOUT))
    observed["second_step_state"] = result.state
    return observed


def linked(task_args, callback_option, callback_sql):
    callback_id = str(uuid.uuid4())
    callback = query_posts_db.si(callback_sql).set(task_id=callback_id)
    result = query_posts_db.apply_async(args=task_args, **{callback_option: callback})
    return {
        "task": scenario.attempt(lambda: result.get(timeout=GET_TIMEOUT)),
        "callback": scenario.call_and_inspect(AsyncResult(callback_id, app=app), GET_TIMEOUT),
    }


def a_chord():
    header = [query_posts_db.si("SELECT 1"), query_posts_db.si("SELECT 2")]
    result = chord(header)(query_posts_db.si("SELECT 3"))
    observed = scenario.call_and_inspect(result, CHORD_TIMEOUT)
    observed["header"] = [
        scenario.call_and_inspect(member, CHORD_TIMEOUT) for member in result.parent.results
    ]
    return observed


def main():
    scenario.warm_up(app)
    scenario.report(
        {
            "group_get": group_get_runs(),
            "group_polled": group_polled(),
            "group_saved": group_saved_and_restored(),
            "chain_immutable": chain_of_immutables(),
            "chain_passing_result": chain_passing_result(),
            "chain_failing_first": chain_with_failing_first_step(),
            "link": linked(["SELECT 3"], "link", "SELECT 4"),
            "link_error": linked([BAD_SQL], "link_error", "SELECT 5"),
            "chord": a_chord(),
        }
    )


if __name__ == "__main__":
    main()
