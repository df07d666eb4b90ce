"""What every scenario script shares: Redis connections, the sample date range, and the
JSON report of what was observed.

A scenario never judges what it sees: it records values, exception types and timings in
one JSON object on stdout, and the Rust test asserts on them. It exits non-zero only when
it cannot do its job at all (no Redis, no worker answering, bad command line).
"""

import json
import os
import sys
import time

import sqlite3

import redis
from billiard.exceptions import TimeLimitExceeded
from celery.exceptions import NotRegistered, TaskRevokedError
from celery.exceptions import TimeoutError as CeleryTimeoutError

# The upstream example's range: exactly the sample posts dated 2017-05-31.
FROM = "2017-05-31"
TO = "2017-06-01"

QUEUE = os.environ.get("CELERY_QUEUE") or "celery"

# How long the first task may take: the worker under test may still be starting.
WARM_UP_TIMEOUT = 60.0


def env_float(name, default):
    value = os.environ.get(name)
    return default if not value else float(value)


def broker_redis():
    """The broker's Redis (queues), as redis-py sees it."""
    return redis.Redis.from_url(os.environ["BROKER_URL"])


def backend_redis():
    """The result backend's Redis (``celery-task-meta-*`` keys)."""
    return redis.Redis.from_url(os.environ.get("RESULT_BACKEND") or os.environ["BROKER_URL"])


def meta_key(task_id):
    return "celery-task-meta-" + task_id


def elapsed_ms(started):
    return round((time.monotonic() - started) * 1000.0, 3)


# The classes a Python caller would write in an `except` clause for these tasks.
CATCHABLE = {
    "ValueError": ValueError,
    "TypeError": TypeError,
    "NotImplementedError": NotImplementedError,
    "sqlite3.OperationalError": sqlite3.OperationalError,
    "celery.exceptions.NotRegistered": NotRegistered,
    "celery.exceptions.TaskRevokedError": TaskRevokedError,
    "celery.exceptions.TimeoutError": CeleryTimeoutError,
    "billiard.exceptions.TimeLimitExceeded": TimeLimitExceeded,
}


def describe_exception(exc):
    """What a Python caller can tell about an exception ``.get()`` raised."""
    return {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": str(exc),
        "args": json.loads(json.dumps(exc.args, default=repr)),
        "catchable_as": sorted(name for name, cls in CATCHABLE.items() if isinstance(exc, cls)),
    }


def attempt(call):
    """Runs ``call()``: ``{"ok": true, "value"}`` or ``{"ok": false, "error"}``, with its time."""
    started = time.monotonic()
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - the exception is the observation
        return {"ok": False, "error": describe_exception(exc), "elapsed_ms": elapsed_ms(started)}
    return {"ok": True, "value": value, "elapsed_ms": elapsed_ms(started)}


def stored_meta(task_id, client=None):
    """The JSON stored under ``celery-task-meta-<id>``, or None."""
    raw = (client or backend_redis()).get(meta_key(task_id))
    return None if raw is None else json.loads(raw)


def result_state(result):
    """A finished AsyncResult as the client sees it, and the raw record behind it."""
    client = backend_redis()
    return {
        "id": result.id,
        "state": result.state,
        "traceback_is_str": isinstance(result.traceback, str),
        "meta": stored_meta(result.id, client),
        "ttl": client.ttl(meta_key(result.id)),
    }


def call_and_inspect(result, timeout):
    """``result.get(timeout)``, then the result's state and stored record."""
    observed = attempt(lambda: result.get(timeout=timeout))
    observed.update(result_state(result))
    return observed


def warm_up(app):
    """Waits until some worker answers, so later timings do not include its start-up."""
    result = app.send_task("tasks.query_posts_db", args=["SELECT 1"])
    try:
        result.get(timeout=WARM_UP_TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        sys.exit(
            "no worker answered tasks.query_posts_db('SELECT 1') within {} s on {} (queue {}): {!r}".format(
                WARM_UP_TIMEOUT, os.environ["BROKER_URL"], QUEUE, exc
            )
        )


def report(observations):
    """Prints the scenario's one JSON object."""
    sys.stdout.write(json.dumps(observations, default=repr, sort_keys=True) + "\n")
    sys.stdout.flush()
