#!/usr/bin/env python3
"""Interop driver for the Swift queue against Python bullmq (pinned 3.4.4).

Subcommands (all print one JSON document on stdout):
  add     --url U --queue Q            add the standard job set through bullmq's Queue; prints ids
  work    --url U --queue Q --count N  run a bullmq Worker until N jobs finished (or timeout)
  inspect --url U --queue Q --ids a,b  read jobs back through bullmq's Queue API
  share   --url U --queue Q --count N  a Worker counting every run in the hash interop:runs
  add-failing --url U --queue Q --count N --attempts A --gap-ms G
                                       N jobs that always fail, with `attempts` and no backoff,
                                       G ms apart
  add-dedup --url U --queue Q --dedup D --tag T
                                       one job with deduplication {id: D, keepLastIfActive}
  dedup-keys --url U --queue Q --dedup D
                                       the de:/dn: keys of deduplication id D, raw

`work` counts every run of a job in the hash interop:runs (job id -> runs), takes
--concurrency (default 1), and with --add-failing N adds N add-failing jobs once its Worker runs.

Job behaviour is chosen by data["mode"]: "ok" returns {"echo": data}, "fail" always raises,
"flaky" fails until its attempt number reaches data["okOn"], "unrecoverable" raises
UnrecoverableError.
"""
import argparse
import asyncio
import json
import sys
import time

import bullmq
from bullmq import Queue, Worker, UnrecoverableError

PINNED = "3.4.4"


def conn(url):
    return {"connection": url, "prefix": "bull"}


async def add(args):
    q = Queue(args.queue, conn(args.url))
    ids = {}
    ids["ok"] = (await q.add("create-order", {"orderId": "py-1", "mode": "ok"})).id
    ids["delayed"] = (await q.add("create-order", {"orderId": "py-2", "mode": "ok"}, {"delay": 300})).id
    ids["prio"] = (await q.add("create-order", {"orderId": "py-3", "mode": "ok"}, {"priority": 2})).id
    ids["flaky"] = (await q.add("create-order", {"orderId": "py-4", "mode": "flaky", "okOn": 2},
                                {"attempts": 3, "backoff": {"type": "exponential", "delay": 100}})).id
    ids["fail"] = (await q.add("create-order", {"orderId": "py-5", "mode": "fail"},
                               {"attempts": 2, "backoff": 50})).id
    ids["unrecoverable"] = (await q.add("create-order", {"orderId": "py-6", "mode": "unrecoverable"},
                                        {"attempts": 5})).id
    ids["custom"] = (await q.add("cancel-order", {"orderId": "py-7", "mode": "ok"}, {"jobId": "ord-py-7"})).id
    again = (await q.add("cancel-order", {"orderId": "py-7b", "mode": "ok"}, {"jobId": "ord-py-7"})).id
    ids["customAgain"] = again
    await q.close()
    return ids


async def work(args):
    import redis.asyncio as aioredis
    r = aioredis.from_url(args.url)
    finished = {"n": 0}

    async def process(job, token):
        await r.hincrby("interop:runs", job.id, 1)
        data = job.data or {}
        mode = data.get("mode", "ok")
        if mode == "fail":
            raise Exception("boom " + str(job.attemptsMade + 1))
        if mode == "unrecoverable":
            raise UnrecoverableError("cannot ever work")
        if mode == "flaky" and job.attemptsMade + 1 < int(data.get("okOn", 1)):
            raise Exception("flaky " + str(job.attemptsMade + 1))
        return {"echo": data, "by": "python"}

    w = Worker(args.queue, process, {**conn(args.url), "stalledInterval": 5000, "concurrency": args.concurrency})
    q = Queue(args.queue, conn(args.url))
    added = await add_failing_jobs(args, args.add_failing) if args.add_failing > 0 else []
    # Finished = in completed or failed, read back from Redis (retries do not count).
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        c = await q.getJobCounts("completed", "failed")
        finished["n"] = c["completed"] + c["failed"]
        if finished["n"] >= args.count:
            break
        await asyncio.sleep(0.05)
    await w.close()
    await q.close()
    await r.aclose() if hasattr(r, "aclose") else await r.close()
    return {"finished": finished["n"], "ids": added}


async def share(args):
    """A Python Worker sharing a queue with a Swift worker: every run of a job is counted in
    the hash interop:runs (job id -> runs), so the test can prove each job ran exactly once."""
    import redis.asyncio as aioredis
    r = aioredis.from_url(args.url)

    async def process(job, token):
        await r.hincrby("interop:runs", job.id, 1)
        await r.hincrby("interop:by", "python", 1)
        return {"by": "python"}

    w = Worker(args.queue, process, {**conn(args.url), "concurrency": 8})
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        if await r.hlen("interop:runs") >= args.count:
            break
        await asyncio.sleep(0.1)
    await w.close()
    done = await r.hlen("interop:runs")
    await r.aclose() if hasattr(r, "aclose") else await r.close()
    return {"runs": done}


async def add_failing_jobs(args, count):
    """Jobs that always fail, with `attempts` and no backoff: bullmq retries them at once. They
    arrive --gap-ms apart, as orders do, so idle workers are waiting when a retry comes back."""
    q = Queue(args.queue, conn(args.url))
    ids = []
    for i in range(count):
        job = await q.add("create-order", {"orderId": f"py-fail-{i}", "mode": "fail"}, {"attempts": args.attempts})
        ids.append(job.id)
        if args.gap_ms > 0:
            await asyncio.sleep(args.gap_ms / 1000)
    await q.close()
    return ids


async def add_failing(args):
    return {"ids": await add_failing_jobs(args, args.count)}


async def add_dedup(args):
    """One job with keep-last-if-active deduplication; prints the id bullmq answered."""
    q = Queue(args.queue, conn(args.url))
    job = await q.add("create-order", {"orderId": "py-dedup", "tag": args.tag},
                      {"deduplication": {"id": args.dedup, "keepLastIfActive": True}})
    await q.close()
    return {"id": job.id}


async def dedup_keys(args):
    import redis.asyncio as aioredis
    r = aioredis.from_url(args.url, decode_responses=True)
    base = f"bull:{args.queue}:"
    out = {"de": await r.get(base + "de:" + args.dedup),
           "dePttl": await r.pttl(base + "de:" + args.dedup),
           "dn": await r.hgetall(base + "dn:" + args.dedup)}
    await r.aclose() if hasattr(r, "aclose") else await r.close()
    return out


async def inspect(args):
    q = Queue(args.queue, conn(args.url))
    out = {"counts": await q.getJobCounts("completed", "failed", "waiting", "active", "delayed", "prioritized")}
    jobs = {}
    for jid in [x for x in args.ids.split(",") if x]:
        j = await q.getJob(jid)
        if j is None:
            jobs[jid] = None
            continue
        jobs[jid] = {
            "name": j.name, "data": j.data, "state": await j.getState(),
            "attemptsMade": j.attemptsMade, "attemptsStarted": getattr(j, "attemptsStarted", None),
            "stalledCounter": j.stalledCounter,
            "returnvalue": j.returnvalue, "failedReason": j.failedReason,
            "timestamp": j.timestamp, "processedOn": j.processedOn, "finishedOn": j.finishedOn,
            "stacktrace": j.stacktrace, "opts": j.opts,
        }
    out["jobs"] = jobs
    await q.close()
    return out


def main():
    if bullmq.__version__ != PINNED:
        print(json.dumps({"error": f"bullmq {bullmq.__version__} installed, {PINNED} required"}))
        sys.exit(3)
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["add", "work", "inspect", "share", "add-failing", "add-dedup", "dedup-keys"])
    p.add_argument("--url", required=True)
    p.add_argument("--queue", required=True)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--ids", default="")
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--attempts", type=int, default=3)
    p.add_argument("--gap-ms", type=float, default=0)
    p.add_argument("--add-failing", type=int, default=0)
    p.add_argument("--dedup", default="")
    p.add_argument("--tag", default="")
    args = p.parse_args()
    fn = {"add": add, "work": work, "inspect": inspect, "share": share, "add-failing": add_failing,
          "add-dedup": add_dedup, "dedup-keys": dedup_keys}[args.cmd]
    print(json.dumps(asyncio.run(fn(args))))


if __name__ == "__main__":
    main()
