#!/usr/bin/env python3
"""Python BullMQ baseline for `bench queue`: enqueue rate and no-op processing rate.

Usage: bullmq_bench.py enqueue <redis-url> <seconds>
       bullmq_bench.py process <redis-url> <jobs> <concurrency>
Prints one JSON line: {"mode", "jobs", "seconds", "perSecond"}.
Jobs are added with removeOnComplete so Redis memory stays flat, like the Swift side.
"""
import asyncio
import json
import sys
import time
import uuid

from bullmq import Queue, Worker


async def enqueue(url, seconds):
    q = Queue("pybench-" + uuid.uuid4().hex[:8], {"connection": url})
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        await q.add("noop", {"i": n}, {"removeOnComplete": True})
        n += 1
    el = time.monotonic() - t0
    await q.obliterate(force=True)
    await q.close()
    return {"mode": "enqueue", "jobs": n, "seconds": el, "perSecond": n / el}


async def process(url, jobs, concurrency):
    name = "pybench-" + uuid.uuid4().hex[:8]
    q = Queue(name, {"connection": url})
    batch = []
    for i in range(jobs):
        batch.append({"name": "noop", "data": {"i": i}, "opts": {"removeOnComplete": True}})
        if len(batch) == 1000:
            await q.addBulk(batch)
            batch = []
    if batch:
        await q.addBulk(batch)
    done = asyncio.Event()
    count = 0

    async def noop(job, token):
        nonlocal count
        count += 1
        if count >= jobs:
            done.set()
        return None

    t0 = time.monotonic()
    w = Worker(name, noop, {"connection": url, "concurrency": concurrency})
    await done.wait()
    # The last completions are written after the processor returns: wait until nothing is active.
    while True:
        c = await q.getJobCounts("waiting", "active")
        if c.get("waiting", 0) == 0 and c.get("active", 0) == 0:
            break
        await asyncio.sleep(0.002)
    el = time.monotonic() - t0
    await w.close()
    await q.obliterate(force=True)
    await q.close()
    return {"mode": "process", "jobs": jobs, "concurrency": concurrency, "seconds": el, "perSecond": jobs / el}


def main():
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "enqueue":
        r = asyncio.run(enqueue(url, float(sys.argv[3])))
    else:
        r = asyncio.run(process(url, int(sys.argv[3]), int(sys.argv[4])))
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
