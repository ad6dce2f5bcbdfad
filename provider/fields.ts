/**
 * Validated building blocks shared by every resource kind. A value that passes these can be
 * handed to the shell quoting function; none of them may start with "-" (it would become an option).
 */
import { isIP } from "node:net";
import { z } from "zod";

const IFNAMSIZ = 15;

export const interfaceName = z
  .string()
  .refine((s) => /^[A-Za-z0-9_.@-]+$/.test(s) && !s.startsWith("-") && s !== "." && s !== "..", {
    // No "+": iptables reads "eth+" as a wildcard for every eth* interface.
    message: "an interface name may use letters, digits and _ . @ - (not first), no spaces, '/', ':' or '+'",
    abort: true,
  })
  .refine((s) => Buffer.byteLength(s) <= IFNAMSIZ, { message: `an interface name is at most ${IFNAMSIZ} bytes`, abort: true });

export const namespaceName = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => /^[A-Za-z0-9_.@+-]+$/.test(s) && !s.startsWith("-") && s !== "." && s !== "..", {
    message: "a namespace name must be a plain file name: letters, digits and _ . @ + - (not first)",
    abort: true,
  });

/** Node's isIP accepts IPv6 zone ids ("fe80::1%eth0"); addresses here never carry one. */
const isAddress = (s: string) => isIP(s) !== 0 && !s.includes("%");

/** An IP address, spelled as the kernel prints it so that state and read-back compare equal. */
export const ipAddress = z.string().refine(isAddress, { message: "not an IPv4 or IPv6 address", abort: true }).transform(canonicalAddress);

export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
}

/** "10.0.0.1/24" → parts, or undefined when it is not an address with a prefix length. */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf("/");
  if (slash < 0) return undefined;
  const address = value.slice(0, slash);
  const prefixText = value.slice(slash + 1);
  const family = isIP(address);
  if (!isAddress(address) || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return undefined;
  return { address, prefix, family: family as 4 | 6 };
}

/** An address with its prefix length; a bare address would become a /32 with no connected route. */
export const cidr = z
  .string()
  .refine((s) => parseCidr(s) !== undefined, {
    message: "needs an address with a prefix length, e.g. 192.168.15.1/24 (a bare address becomes a /32)",
    abort: true,
  })
  .transform(canonicalCidr);

/**
 * A network: host bits must be zero, as the kernel's routing table and iptables store it. Refused
 * rather than masked: "10.0.0.1/24" may as well be a typo for an address as for its network.
 */
export const networkCidr = cidr.superRefine((s, ctx) => {
  const c = parseCidr(s)!;
  if (!isNetworkAddress(c)) ctx.addIssue({ code: "custom", message: `host bits must be zero: use ${networkOf(c)}` });
});

export const port = z.number().int().min(1).max(65535);

export function isNetworkAddress(c: Cidr): boolean {
  const bits = addressToBits(c.address);
  const hostBits = c.family === 4 ? 32 - c.prefix : 128 - c.prefix;
  return hostBits === 0 || bits % (1n << BigInt(hostBits)) === 0n;
}

/** "10.0.0.1/24" → "10.0.0.0/24". */
export function networkOf(c: Cidr): string {
  const width = c.family === 4 ? 32 : 128;
  const hostMask = (1n << BigInt(width - c.prefix)) - 1n;
  return `${bitsToAddress(addressToBits(c.address) & ~hostMask, c.family)}/${c.prefix}`;
}

/** The kernel's spelling of an address with prefix (IPv6 compressed, lower case). */
export function canonicalCidr(value: string): string {
  const c = parseCidr(value)!;
  return `${canonicalAddress(c.address)}/${c.prefix}`;
}

/** IPv6 as iproute2 prints it (glibc inet_ntop): lower case, the longest run of zero groups as "::". */
export function canonicalAddress(address: string): string {
  const family = isIP(address);
  return family === 6 ? bitsToAddress(addressToBits(address), 6) : address;
}

/** An address as a number back to text: dotted quad, or IPv6 as iproute2 prints it (see canonicalAddress). */
export function bitsToAddress(bits: bigint, family: 4 | 6): string {
  if (family === 4) return dotted(bits);
  const groups = Array.from({ length: 8 }, (_, i) => Number((bits >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8;) {
    let end = i;
    while (end < 8 && groups[end] === 0) end++;
    if (end - i > best.length) best = { start: i, length: end - i };
    i = end > i ? end : i + 1;
  }
  // inet_ntop keeps the dotted tail of IPv4-compatible (::a.b.c.d) and IPv4-mapped (::ffff:a.b.c.d) addresses.
  if (best.start === 0 && (best.length === 6 || (best.length === 5 && groups[5] === 0xffff))) {
    return `::${best.length === 5 ? "ffff:" : ""}${dotted(bits & 0xffffffffn)}`;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(":");
  if (best.length < 2) return hex(0, 8);
  return `${hex(0, best.start)}::${hex(best.start + best.length, 8)}`;
}

const dotted = (bits: bigint) => [24n, 16n, 8n, 0n].map((shift) => String((bits >> shift) & 0xffn)).join(".");

/** An address (either family, any valid spelling) as a number. */
export function addressToBits(address: string): bigint {
  if (isIP(address) === 4) return address.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(octet), 0n);
  const groups = (part: string) =>
    part
      .split(":")
      .filter((g) => g !== "")
      .flatMap((g) => {
        if (!g.includes(".")) return [BigInt(`0x${g}`)];
        const v4 = addressToBits(g);
        return [v4 >> 16n, v4 & 0xffffn];
      });
  const [head, tail] = address.split("::");
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = [...left, ...Array(8 - left.length - right.length).fill(0n), ...right];
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** A host name or IP address for SSH; never an option-like string. */
export const hostName = z.string().refine((s) => isIP(s) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(s), {
  message: "must be an IP address or a DNS host name",
  abort: true,
});

/** The IPv4 minimum; the kernel refuses less for any link carrying IPv4. */
export const MIN_MTU = 68;
export const mtu = z.number().int().min(MIN_MTU).max(65535);
