/** The simulation's kernel: real time, a seeded random source, and an event queue. */

/** mulberry32: small, fast and good enough to drive a simulation reproducibly. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  between(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

interface Entry {
  t: number;
  seq: number;
  fn: () => void;
}

/** A binary heap of timed callbacks, ordered by time then by insertion. */
export class Scheduler {
  now = 0;
  #heap: Entry[] = [];
  #seq = 0;
  processed = 0;

  at(t: number, fn: () => void) {
    const e = { t: Math.max(t, this.now), seq: this.#seq++, fn };
    const h = this.#heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  after(delay: number, fn: () => void) {
    this.at(this.now + delay, fn);
  }

  /** Runs callbacks in order until `until`; `check` runs after each one. */
  run(until: number, check: () => void) {
    const h = this.#heap;
    while (h.length > 0 && h[0]!.t <= until) {
      const top = h[0]!;
      const last = h.pop()!;
      if (h.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = -1;
          let best = last;
          if (l < h.length && before(h[l]!, best)) {
            m = l;
            best = h[l]!;
          }
          if (r < h.length && before(h[r]!, best)) {
            m = r;
            best = h[r]!;
          }
          if (m < 0) break;
          h[i] = h[m]!;
          i = m;
        }
        h[i] = last;
      }
      this.now = top.t;
      this.processed++;
      top.fn();
      check();
    }
    this.now = until;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
