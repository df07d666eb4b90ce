"""Client-side latency and throughput of whichever worker consumes the queue, measured
with the stock Celery client (for ``cargo xtask bench celery``, and to compare a Python
worker with posts-worker on the same machine).

* group: ``--group-runs`` times, a group of ``--group-size`` ``tasks.query_posts_db``
  signatures sent and waited on with ``.get(timeout=--group-timeout)``, as upstream's
  scorer_basic does; end-to-end milliseconds from building the group to having every
  result. A run that times out counts with the time it took.
* sequential: ``--sequential`` calls of ``.delay(query).get()``, one after the other.
* bulk: ``--bulk`` messages pushed in pipelined batches, then the time until every one of
  their result keys exists (polled with pipelined EXISTS), from the start of the push.

Prints one JSON object. Environment: see tasks.py.
"""

import argparse
import json
import math
import time

from celery import group

import envelope
import scenario
from tasks import app, query_posts_db


def percentile(sorted_values, pct):
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return round(sorted_values[rank - 1], 3)


def summary(latencies_ms):
    ordered = sorted(latencies_ms)
    return {
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "max_ms": None if not ordered else round(ordered[-1], 3),
    }


def bench_groups(runs, size, timeout, query):
    latencies, timeouts, errors = [], 0, []
    for _ in range(runs):
        started = time.monotonic()
        result = group(
            app.signature("tasks.query_posts_db", args=[query]) for _ in range(size)
        ).apply_async()
        outcome = scenario.attempt(lambda: result.get(timeout=timeout))
        latencies.append((time.monotonic() - started) * 1000.0)
        if not outcome["ok"]:
            if "celery.exceptions.TimeoutError" in outcome["error"]["catchable_as"]:
                timeouts += 1
            else:
                errors.append(outcome["error"])
    return {"runs": runs, "size": size, "timeouts": timeouts, "errors": errors[:5], **summary(latencies)}


def bench_sequential(calls, timeout, query):
    latencies, errors = [], []
    for _ in range(calls):
        started = time.monotonic()
        outcome = scenario.attempt(lambda: query_posts_db.delay(query).get(timeout=timeout))
        latencies.append((time.monotonic() - started) * 1000.0)
        if not outcome["ok"]:
            errors.append(outcome["error"])
    return {"calls": calls, "errors": errors[:5], **summary(latencies)}


def bench_bulk(messages, timeout, query, batch=1000):
    prepared = [envelope.task_envelope("tasks.query_posts_db", [query]) for _ in range(messages)]
    ids = [envelope.task_id_of(message) for message in prepared]
    raws = [json.dumps(message) for message in prepared]
    broker = scenario.broker_redis()
    backend = scenario.backend_redis()

    started = time.monotonic()
    for start in range(0, messages, batch):
        broker.lpush(scenario.QUEUE, *raws[start : start + batch])
    push_s = time.monotonic() - started

    # Results come roughly in push order, so each round checks the oldest outstanding
    # ids first and stops at the first batch that is not complete yet: polling costs the
    # worker under test (sharing the machine) as little CPU as possible.
    remaining = ids
    while remaining and time.monotonic() - started < timeout:
        checked = 0
        still = []
        while checked < len(remaining):
            chunk = remaining[checked : checked + batch]
            checked += len(chunk)
            pipe = backend.pipeline(transaction=False)
            for task_id in chunk:
                pipe.exists(scenario.meta_key(task_id))
            still.extend(task_id for task_id, found in zip(chunk, pipe.execute()) if not found)
            if still:
                break
        remaining = still + remaining[checked:]
        if remaining:
            time.sleep(0.02)
    total_s = time.monotonic() - started
    return {
        "messages": messages,
        "push_s": round(push_s, 3),
        "total_s": round(total_s, 3),
        "per_s": round((messages - len(remaining)) / total_s, 1) if total_s > 0 else None,
        "missing": len(remaining),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group-runs", type=int, default=20)
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--group-timeout", type=float, default=1.0)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--sequential-timeout", type=float, default=5.0)
    parser.add_argument("--bulk", type=int, default=10000)
    parser.add_argument("--bulk-timeout", type=float, default=300.0)
    parser.add_argument("--query", default="SELECT 1")
    options = parser.parse_args()

    scenario.warm_up(app)
    report = {"query": options.query}
    if options.group_runs > 0:
        report["group"] = bench_groups(
            options.group_runs, options.group_size, options.group_timeout, options.query
        )
    if options.sequential > 0:
        report["sequential"] = bench_sequential(
            options.sequential, options.sequential_timeout, options.query
        )
    if options.bulk > 0:
        report["bulk"] = bench_bulk(options.bulk, options.bulk_timeout, options.query)
    scenario.report(report)


if __name__ == "__main__":
    main()
