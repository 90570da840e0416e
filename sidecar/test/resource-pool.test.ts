// Pins the pool that hands out inference contexts: first come, first served,
// and no caller left waiting forever when a context cannot be created.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ResourcePool } from "../src/util/resource-pool.js";

test("when creating a resource fails, callers waiting for it get an answer instead of waiting forever", async () => {
  let attempts = 0;
  let failFirst!: (error: Error) => void;
  const pool = new ResourcePool<string>(1, () => {
    attempts++;
    if (attempts === 1) return new Promise<string>((_, reject) => (failFirst = reject));
    return Promise.resolve(`context-${attempts}`);
  });
  const first = pool.acquire();
  const waiting = pool.acquire(); // queued: the one slot is being created
  assert.equal(pool.queued, 1);
  failFirst(new Error("out of memory"));
  await assert.rejects(first, /out of memory/);
  const lease = await waiting;
  assert.equal(lease.resource, "context-2");
  assert.equal(pool.queued, 0);
  lease.release();
});

test("when creation keeps failing, every waiter gets the error", async () => {
  const pool = new ResourcePool<string>(1, () => Promise.reject(new Error("no memory")));
  const results = await Promise.allSettled([pool.acquire(), pool.acquire(), pool.acquire()]);
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected", "rejected"]);
  assert.equal(pool.queued, 0);
});

test("a released resource goes to the longest waiter, and an aborted waiter leaves the queue", async () => {
  let made = 0;
  const pool = new ResourcePool<number>(1, () => Promise.resolve(++made));
  const held = await pool.acquire();
  const abort = new AbortController();
  const quitter = pool.acquire(abort.signal);
  const patient = pool.acquire();
  abort.abort(new Error("gave up"));
  await assert.rejects(quitter, /gave up/);
  held.release();
  assert.equal((await patient).resource, 1);
  assert.equal(made, 1);
});

test("tryAcquire takes a free resource but never waits, nor jumps ahead of a waiter", async () => {
  let made = 0;
  const pool = new ResourcePool<number>(2, () => Promise.resolve(++made));
  const first = await pool.acquire();
  const second = await pool.tryAcquire();
  assert.equal(second?.resource, 2, "a free slot: created");
  assert.equal(await pool.tryAcquire(), undefined, "none free: no lease, and no place in the queue");
  assert.equal(pool.queued, 0);
  const waiting = pool.acquire();
  second!.release();
  assert.equal((await waiting).resource, 2, "the waiter got the released one");
  first.release();
  const third = pool.acquire(); // takes the idle one at once
  assert.equal((await third).resource, 1);
  const blocked = pool.acquire();
  assert.equal(await pool.tryAcquire(), undefined, "someone waits: tryAcquire does not take what they wait for");
  (await third).release();
  assert.equal((await blocked).resource, 1);
  assert.equal(pool.capacity, 2);
});
