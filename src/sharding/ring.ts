/**
 * A consistent-hash ring with virtual nodes: which live replica owns a resource key. Adding or
 * removing one member moves only the keys that member gains or loses (about 1/n of them).
 */
import { createHash } from 'node:crypto';

/** Virtual nodes per member: enough to spread keys evenly over a handful of replicas. */
export const VIRTUAL_NODES = 128;

function hash(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0);
}

export class HashRing {
  private readonly points: { at: number; member: string }[];

  constructor(members: Iterable<string>, virtualNodes = VIRTUAL_NODES) {
    this.points = [...new Set(members)]
      .flatMap((member) => Array.from({ length: virtualNodes }, (_, i) => ({ at: hash(`${member}#${i}`), member })))
      .sort((a, b) => a.at - b.at || a.member.localeCompare(b.member));
  }

  get empty(): boolean {
    return this.points.length === 0;
  }

  /** The member owning `key` (`namespace/name`), or undefined when the ring is empty. */
  owner(key: string): string | undefined {
    if (this.points.length === 0) return undefined;
    const h = hash(key);
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]!.at < h) lo = mid + 1;
      else hi = mid;
    }
    return this.points[lo % this.points.length]!.member;
  }
}
