// A pool of up to `size` lazily created resources, handed out first come,
// first served. A waiter whose signal aborts leaves the queue. When creating
// a resource fails, the slot is free again: the next waiter tries to create
// one itself (and gets its own error), so no waiter is left pending.

export interface Lease<T> {
  resource: T;
  release(): void;
}

interface Waiter<T> {
  resolve(lease: Lease<T>): void;
  reject(reason: unknown): void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export class ResourcePool<T> {
  private readonly idle: T[] = [];
  private created = 0;
  private creating = 0;
  private readonly waiters: Waiter<T>[] = [];

  constructor(
    private readonly size: number,
    private readonly create: () => Promise<T>,
  ) {}

  /** How many callers are waiting for a resource. */
  get queued(): number {
    return this.waiters.length;
  }

  /** How many resources the pool may hold. */
  get capacity(): number {
    return this.size;
  }

  /**
   * A resource only if one is free now (idle, or a slot to create one in);
   * undefined otherwise, never a place in the queue. Nobody waits while one
   * is free (a release hands it straight to the first waiter), so this never
   * takes what a waiter is owed. For work that can use more resources but
   * does not need them.
   */
  async tryAcquire(): Promise<Lease<T> | undefined> {
    if (this.idle.length === 0 && this.created + this.creating >= this.size) return undefined;
    return this.acquire();
  }

  async acquire(signal?: AbortSignal): Promise<Lease<T>> {
    signal?.throwIfAborted();
    const idle = this.idle.pop();
    if (idle !== undefined) return this.lease(idle);
    if (this.created + this.creating < this.size) {
      this.creating++;
      let resource: T;
      try {
        resource = await this.create();
      } catch (error) {
        this.creating--;
        this.retryNextWaiter();
        throw error;
      }
      this.creating--;
      this.created++;
      return this.lease(resource);
    }
    return new Promise<Lease<T>>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** A creation failed: hand its slot to the first waiter, which tries again. */
  private retryNextWaiter(): void {
    const next = this.waiters.shift();
    if (!next) return;
    next.signal?.removeEventListener("abort", next.onAbort);
    this.acquire(next.signal).then(next.resolve, next.reject);
  }

  private lease(resource: T): Lease<T> {
    let released = false;
    return {
      resource,
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiters.shift();
        if (next) {
          next.signal?.removeEventListener("abort", next.onAbort);
          next.resolve(this.lease(resource));
        } else {
          this.idle.push(resource);
        }
      },
    };
  }
}
