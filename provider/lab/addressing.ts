/**
 * Address arithmetic and stable seat allocation for the Lab model. Pure: no I/O, no clock, no randomness.
 *
 * Stability is the point. A seat (a subnet in a pool, a host address in a subnet, a VNI in a range) is
 * derived from a hash of the owner's own identity, never from its position among the others, so adding
 * or removing one link leaves every other link where it was. Two owners whose hashes meet are resolved
 * deterministically (the smaller key probes first); only then could a newcomer displace another, so the
 * previous run's seats (allocation.ts keeps them) are seated before anyone probes.
 */
import { createHash } from "node:crypto";
import { isIP } from "node:net";
import { addressToBits, bitsToAddress } from "../fields";

export type Family = 4 | 6;
const FAMILY_BITS = { 4: 32, 6: 128 } as const;

/** An IP network or an address within one: the address as a number and its prefix length. */
export interface Prefixed {
  family: Family;
  bits: bigint;
  prefix: number;
}

/** "10.1.0.5/30" → its parts; the caller has validated the text. */
export function parsePrefixed(text: string): Prefixed {
  const [address, prefix] = text.split("/");
  return { family: isIP(address) as Family, bits: addressToBits(address), prefix: Number(prefix) };
}

const hostBits = (p: Pick<Prefixed, "family" | "prefix">) => BigInt(FAMILY_BITS[p.family] - p.prefix);

export const networkOf = (p: Prefixed): Prefixed => ({ ...p, bits: (p.bits >> hostBits(p)) << hostBits(p) });
const lastAddress = (p: Prefixed): bigint => networkOf(p).bits + (1n << hostBits(p)) - 1n;
export const formatPrefixed = (p: Prefixed): string => `${bitsToAddress(p.bits, p.family)}/${p.prefix}`;

export function overlaps(a: Prefixed, b: Prefixed): boolean {
  return a.family === b.family && networkOf(a).bits <= lastAddress(b) && networkOf(b).bits <= lastAddress(a);
}

export function contains(network: Prefixed, address: bigint): boolean {
  return networkOf(network).bits <= address && address <= lastAddress(network);
}

/** A pool cut into equal subnets: slot i is the i-th subnet of length `prefix`. */
export interface Pool {
  network: Prefixed;
  prefix: number;
}

export const slotCount = (pool: Pool): number => 2 ** (pool.prefix - pool.network.prefix);

export function slotNetwork(pool: Pool, slot: number): Prefixed {
  const size = 1n << BigInt(FAMILY_BITS[pool.network.family] - pool.prefix);
  return { family: pool.network.family, bits: pool.network.bits + BigInt(slot) * size, prefix: pool.prefix };
}

/** The slot a subnet of the pool's size occupies, or undefined when it is not one of the pool's subnets. */
export function slotOf(pool: Pool, subnet: Prefixed): number | undefined {
  if (subnet.family !== pool.network.family || subnet.prefix !== pool.prefix || !contains(pool.network, subnet.bits)) return undefined;
  return Number((subnet.bits - pool.network.bits) >> BigInt(FAMILY_BITS[subnet.family] - pool.prefix));
}

/** The slots [first, last] a network covers in the pool, or undefined when they do not meet. */
export function slotsCovered(pool: Pool, network: Prefixed): Interval | undefined {
  if (!overlaps(pool.network, network)) return undefined;
  const shift = BigInt(FAMILY_BITS[pool.network.family] - pool.prefix);
  const from = networkOf(network).bits > pool.network.bits ? networkOf(network).bits : pool.network.bits;
  const to = lastAddress(network) < lastAddress(pool.network) ? lastAddress(network) : lastAddress(pool.network);
  return [Number((from - pool.network.bits) >> shift), Number((to - pool.network.bits) >> shift)];
}

/**
 * Host numbers usable in a subnet: both addresses of a /31 or /127 (RFC 3021, 6164); otherwise neither
 * the network address nor (IPv4) the broadcast address. Capped so IPv6 host numbers stay short.
 */
export function hostRange(subnet: Pick<Prefixed, "family" | "prefix">): Interval | undefined {
  const bits = FAMILY_BITS[subnet.family] - subnet.prefix;
  if (bits === 0) return undefined;
  if (bits === 1) return [0, 1];
  const last = Math.min(2 ** Math.min(bits, 52) - (subnet.family === 4 ? 2 : 1), 65534);
  return [1, last];
}

export type Interval = [first: number, last: number];

export interface SeatRequest {
  key: string;
  /** A seat that must be had (an explicit address); validated elsewhere not to collide. */
  pinned?: number;
  /** The seat it had in the previous run, kept if still free. */
  kept?: number;
  /** A seat to take if still free once kept seats are seated (a natural order such as .1 and .2 of a link). */
  preferred?: number;
}

/** An index in [0, size) from a hash of the key and the attempt number. */
export function hashSeat(salt: string, key: string, attempt: number, size: number): number {
  const digest = createHash("sha256").update(`${salt}\0${key}\0${attempt}`).digest();
  return Number(digest.readBigUInt64BE(0) % BigInt(size));
}

const PROBES = 32;

/**
 * Seats every request on a distinct seat in `range`, avoiding `taken`. Pinned seats first, then kept
 * seats still free, then preferred seats still free, then each remaining key (in key order) on the first
 * free seat of its own hash sequence; a nearly full range falls back to the next free seat after the
 * key's first hash. Returns the keys that found no seat (the range is too small) instead of throwing.
 */
export function allocateSeats(
  requests: readonly SeatRequest[],
  range: Interval,
  taken: readonly Interval[],
  salt: string,
): { seats: Map<string, number>; homeless: string[] } {
  const [first, last] = range;
  const size = last - first + 1;
  const used = new Set<number>();
  const free = (seat: number) => seat >= first && seat <= last && !used.has(seat) && !taken.some(([a, b]) => seat >= a && seat <= b);
  const seats = new Map<string, number>();
  const seat = (key: string, at: number) => {
    seats.set(key, at);
    used.add(at);
  };
  const sorted = [...requests].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const r of sorted) if (r.pinned !== undefined) seat(r.key, r.pinned);
  for (const wish of ["kept", "preferred"] as const) {
    for (const r of sorted) {
      const at = r[wish];
      if (!seats.has(r.key) && at !== undefined && free(at)) seat(r.key, at);
    }
  }
  const homeless: string[] = [];
  for (const r of sorted) {
    if (seats.has(r.key)) continue;
    let found: number | undefined;
    for (let attempt = 0; attempt < PROBES && found === undefined; attempt++) {
      const candidate = first + hashSeat(salt, r.key, attempt, size);
      if (free(candidate)) found = candidate;
    }
    const home = first + hashSeat(salt, r.key, 0, size);
    for (let step = 1; step < size && found === undefined; step++) {
      const candidate = first + ((home - first + step) % size);
      if (free(candidate)) found = candidate;
    }
    if (found === undefined) homeless.push(r.key);
    else seat(r.key, found);
  }
  return { seats, homeless };
}

/** "10.1.0.1/30" → "10.1.0.1". */
export const withoutPrefix = (address: string) => address.split("/")[0];
