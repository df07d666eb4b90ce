"""Broken and hostile messages pushed straight onto the queue with redis-py, the way a
buggy or foreign producer would: what does the worker leave in ``celery-task-meta-<id>``
for each, and does it keep working?

Each case is one message with its own task id. A well-behaved consumer stores a FAILURE
for every message whose id it can read, and sets aside (dead-letters) what it cannot
read at all; the Rust test checks each case against the report and the worker's dead
letters. A valid control task goes last: its result shows the worker survived them all.

Environment: see tasks.py; ``GET_TIMEOUT`` (seconds for the control task, default 60) and
``GRACE_S`` (how long to keep looking for the other results afterwards, default 5);
``CASES`` (comma-separated case names, default all: a stock Python worker dies on
``truncated_json``).
"""

import json
import os
import sys
import time

import envelope
import scenario
from tasks import app

GET_TIMEOUT = scenario.env_float("GET_TIMEOUT", 60.0)
GRACE_S = scenario.env_float("GRACE_S", 5.0)
TEN_MB = 10 * 1024 * 1024


def select_1(**changes):
    message = envelope.task_envelope("tasks.query_posts_db", ["SELECT 1"])
    message.update(changes)
    return message


def truncated_json():
    message = select_1()
    text = json.dumps(message)
    task_id = envelope.task_id_of(message)
    return task_id, text[: text.index(task_id) + len(task_id) + 40]


def two_element_body():
    message = select_1(body=envelope.encode_body(json.dumps([["SELECT 1"], {}])))
    return envelope.task_id_of(message), json.dumps(message)


def wrong_content_type():
    # Pickle: a consumer that honoured it would run code chosen by whoever can push.
    message = select_1(**{"content-type": "application/x-python-serialize"})
    return envelope.task_id_of(message), json.dumps(message)


def ten_mb_body():
    sql = "SELECT length('{}')".format("x" * TEN_MB)
    message = envelope.task_envelope("tasks.query_posts_db", [sql])
    return envelope.task_id_of(message), json.dumps(message)


def unknown_task():
    message = envelope.task_envelope("tasks.no_such_task", [1])
    return envelope.task_id_of(message), json.dumps(message)


def body_not_base64():
    message = select_1(body="%%% this is not base64 %%%")
    return envelope.task_id_of(message), json.dumps(message)


def nan_argument():
    # What json.dumps writes for float('nan'): not JSON, but kombu sends it.
    body = json.dumps([[float("nan")], {}, envelope.EMPTY_EMBED])
    message = select_1(body=envelope.encode_body(body))
    return envelope.task_id_of(message), json.dumps(message)


CASES = {
    "truncated_json": truncated_json,
    "two_element_body": two_element_body,
    "wrong_content_type": wrong_content_type,
    "ten_mb_body": ten_mb_body,
    "unknown_task": unknown_task,
    "body_not_base64": body_not_base64,
    "nan_argument": nan_argument,
}


def main():
    scenario.warm_up(app)
    broker = scenario.broker_redis()
    backend = scenario.backend_redis()

    chosen = [name for name in (os.environ.get("CASES") or ",".join(CASES)).split(",") if name]
    unknown = [name for name in chosen if name not in CASES]
    if unknown:
        sys.exit("unknown cases {}; known: {}".format(unknown, ", ".join(CASES)))

    pushed = {}
    for name in chosen:
        build = CASES[name]
        task_id, raw = build()
        broker.lpush(scenario.QUEUE, raw)
        pushed[name] = {"id": task_id, "bytes": len(raw)}
    control = envelope.task_envelope("tasks.query_posts_db", ["SELECT 7"])
    broker.lpush(scenario.QUEUE, json.dumps(control))

    control_result = app.AsyncResult(envelope.task_id_of(control))
    observed = {"control": scenario.call_and_inspect(control_result, GET_TIMEOUT)}
    grace_end = time.monotonic() + GRACE_S
    while time.monotonic() < grace_end:
        if all(backend.exists(scenario.meta_key(case["id"])) for case in pushed.values()):
            break
        time.sleep(0.1)
    for name, case in pushed.items():
        case["meta"] = scenario.stored_meta(case["id"], backend)
        observed[name] = case
    observed["queue_left"] = broker.llen(scenario.QUEUE)
    scenario.report(observed)


if __name__ == "__main__":
    main()
