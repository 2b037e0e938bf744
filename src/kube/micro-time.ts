/**
 * Lease times are `MicroTime` (six fractional digits); client-node serializes a Date with
 * milliseconds, which the API server refuses. This Date prints the format the server wants.
 */
export class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
  }
  override toJSON(): string {
    return this.toISOString();
  }
}

export const micro = (d: Date | string | undefined): Date | undefined => (d === undefined ? undefined : new MicroTime(d));
