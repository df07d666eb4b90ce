"""The client side of `cargo xtask bench celery`: stock Celery client calls against
whichever worker serves the queue, timed here and printed as one JSON object.

Environment: BROKER_URL (broker and result backend), CELERY_QUEUE, GROUPS, GROUP_SIZE,
SEQUENTIAL, BULK.
"""

import json
import os
import sys
import time
import uuid

import redis
from celery import Celery, group

URL = os.environ["BROKER_URL"]
QUEUE = os.environ.get("CELERY_QUEUE", "celery")
TASK = "tasks.query_posts_db"
ARGS = ["SELECT 1"]

app = Celery("bench", broker=URL, backend=URL)
app.conf.task_default_queue = QUEUE


def warm_up():
    """Waits until the worker answers, then runs a few tasks so pools are warm."""
    deadline = time.monotonic() + 60
    while True:
        try:
            app.send_task(TASK, args=ARGS).get(timeout=5)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
    group(app.signature(TASK, args=ARGS) for _ in range(50)).apply_async().get(timeout=30)


def timed_groups(runs, size):
    elapsed = []
    for _ in range(runs):
        started = time.perf_counter()
        results = group(app.signature(TASK, args=ARGS) for _ in range(size)).apply_async().get(timeout=30)
        elapsed.append((time.perf_counter() - started) * 1000)
        assert len(results) == size and results[0] == [[1]], results[:1]
    return elapsed


def timed_sequential(count):
    elapsed = []
    for _ in range(count):
        started = time.perf_counter()
        result = app.send_task(TASK, args=ARGS).get(timeout=30)
        elapsed.append((time.perf_counter() - started) * 1000)
        assert result == [[1]], result
    return elapsed


def bulk(count):
    """Pushes `count` real envelopes at once and times until every result is stored."""
    r = redis.Redis.from_url(URL)
    holding = QUEUE + ".bench-template"
    app.send_task(TASK, args=ARGS, queue=holding)
    template = json.loads(r.rpop(holding))
    r.delete(holding)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    messages = []
    for task_id in ids:
        template["headers"]["id"] = task_id
        template["headers"]["root_id"] = task_id
        template["properties"]["correlation_id"] = task_id
        template["properties"]["delivery_tag"] = str(uuid.uuid4())
        template["properties"]["delivery_info"]["routing_key"] = QUEUE
        messages.append(json.dumps(template))
    keys = ["celery-task-meta-" + i for i in ids]
    started = time.perf_counter()
    pipe = r.pipeline(transaction=False)
    for i in range(0, count, 1000):
        pipe.lpush(QUEUE, *messages[i : i + 1000])
    pipe.execute()
    # Results come roughly in order: check a chunk at a time and move on once it is
    # complete, so polling stays light next to the worker's own traffic.
    done = 0
    while done < count:
        chunk = keys[done : done + 1000]
        if r.exists(*chunk) == len(chunk):
            done += len(chunk)
            continue
        time.sleep(0.005)
        if time.perf_counter() - started > 600:
            raise SystemExit("bulk: {} of {} results after 600 s".format(done, count))
    seconds = time.perf_counter() - started
    return {"jobs": count, "seconds": seconds}


def main():
    warm_up()
    report = {
        "group_ms": timed_groups(int(os.environ["GROUPS"]), int(os.environ["GROUP_SIZE"])),
        "sequential_ms": timed_sequential(int(os.environ["SEQUENTIAL"])),
        "bulk": bulk(int(os.environ["BULK"])),
    }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
