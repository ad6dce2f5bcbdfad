/**
 * A Lab's allocation: the subnet of every link and LAN, the address of every member, the VNI of every
 * segment across hosts. Pure; the Lab's planner (sdk/lab/allocation.ts) and the LabAllocation resource both
 * call `allocateLab`, which is what keeps them exact with each other.
 *
 * What never moves: the LabAllocation resource's check is given its own previous result (the engine's
 * `olds`) and passes it as `previous`, whose seats are kept before anything new is seated. So adding or
 * removing a node, link, LAN or member changes nothing that already exists, whatever the hashes and the
 * order of declaration, and preview shows the exact addresses (a dynamic provider's preview returns the
 * checked inputs as outputs). Without a previous result (a new stack) seats come from a hash of their
 * owner's identity.
 */
import { isDeepStrictEqual } from "node:util";
import { z } from "zod";
import { bitsToAddress, cidr, networkCidr } from "../fields";
import type { Props } from "../kind";
import type { Failure } from "../validate";
import {
  allocateSeats,
  contains,
  Family,
  formatPrefixed,
  hostRange,
  Interval,
  networkOf,
  overlaps,
  parsePrefixed,
  Pool,
  Prefixed,
  SeatRequest,
  slotCount,
  slotNetwork,
  slotOf,
  slotsCovered,
} from "./addressing";

export interface LabProblem {
  /** What the problem is about: "node r1", "link a:eth1--b:eth1", "lan office", "pools.p2p", a property path. */
  where: string;
  reason: string;
}

/** A topology that cannot work, with every problem found; nothing has been created. */
export class LabTopologyError extends Error {
  constructor(readonly problems: LabProblem[]) {
    super(`the lab topology cannot work:\n${problems.map((p) => `  ${p.where}: ${p.reason}`).join("\n")}`);
    this.name = "LabTopologyError";
  }
}

export type Refuse = (where: string, reason: string) => void;

/** Collects problems; `check` throws them all at once. */
export function problemList() {
  const problems: LabProblem[] = [];
  return {
    refuse: ((where, reason) => problems.push({ where, reason })) as Refuse,
    check() {
      if (problems.length > 0) throw new LabTopologyError(problems);
    },
  };
}

const vni = z.number().int().min(1).max(16777215);

const poolSpec = z.object({
  ipv4: z
    .union([networkCidr, z.literal(false)])
    .optional()
    .describe("IPv4 network to cut subnets from; false for none."),
  prefix: z.number().int().min(1).max(31).optional().describe("Prefix length of each IPv4 subnet."),
  ipv6: networkCidr.optional().describe("IPv6 network to cut subnets from; none by default."),
  prefix6: z.number().int().min(1).max(127).optional().describe("Prefix length of each IPv6 subnet (default 64)."),
});

export const poolsSpec = z.object({ p2p: poolSpec.optional(), lan: poolSpec.optional(), vni: z.object({ from: vni, to: vni }).optional() });

/** Earlier allocations, exactly as a plan's `allocations`. */
export const labAllocations = z.object({
  subnets: z.record(z.string(), z.array(cidr)),
  addresses: z.record(z.string(), z.array(cidr)),
  vnis: z.record(z.string(), vni),
});
export type LabAllocations = z.infer<typeof labAllocations>;

/** What allocation needs to know of a lab, and nothing else (no hosts, routes or credentials): it is stored in state. */
export const labDemand = z.object({
  segments: z.array(
    z.object({
      kind: z.enum(["link", "lan"]),
      /** A link's two endpoints sorted and joined by "--", a LAN's name. */
      id: z.string().min(1),
      /** "node:ifname", in the order the topology names them (a link's ends take .1 and .2 in it). */
      members: z.array(z.string().min(1)).min(1),
      /** Explicit addresses by endpoint; the planner has checked that they name members, one per family. */
      addresses: z.record(z.string(), z.array(cidr)).optional(),
      /** Crosses hosts: gets a VNI. */
      spanning: z.literal(true).optional(),
    }),
  ),
  pools: poolsSpec.optional(),
  /** Salts the VNIs (the lab's namespace prefix): two labs on the same hosts should not pick the same ones. */
  salt: z.string(),
});
export type LabDemand = z.infer<typeof labDemand>;
type DemandSegment = LabDemand["segments"][number];

export const DEFAULT_POOLS = {
  p2p: { ipv4: "10.1.0.0/16", prefix: 30, prefix6: 64 },
  lan: { ipv4: "172.16.0.0/16", prefix: 24, prefix6: 64 },
  vni: { from: 10000, to: 16777215 },
} as const;

const FAMILIES: Family[] = [4, 6];
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const labelOf = (s: DemandSegment) => `${s.kind} ${s.id}`;
const explicitOf = (s: DemandSegment, endpoint: string) => (s.addresses?.[endpoint] ?? []).map(parsePrefixed);

/**
 * Every segment's subnets and members' addresses (IPv4 first) and every spanning segment's VNI. Seats in
 * `previous` are kept while the pool and any explicit address allow; what is new takes free seats only.
 * Throws LabTopologyError naming every problem (a pool too small, explicit subnets that overlap).
 */
export function allocateLab(demand: LabDemand, previous?: LabAllocations): LabAllocations {
  const { refuse, check } = problemList();
  const segments = [...demand.segments].sort((x, y) => byText(`${x.kind}/${x.id}`, `${y.kind}/${y.id}`));
  const pools = resolvePools(demand, refuse);
  check();
  const subnets = allocateSubnets(segments, pools, previous, refuse);
  check();
  const addresses = allocateAddresses(segments, subnets, previous, refuse);
  check();
  const vnis = allocateVnis(
    segments.filter((s) => s.spanning),
    pools.vni,
    demand.salt,
    previous,
    refuse,
  );
  check();
  return {
    subnets: Object.fromEntries(segments.map((s) => [s.id, subnets.get(s.id)!.map(formatPrefixed)])),
    addresses: Object.fromEntries(segments.flatMap((s) => s.members.map((m) => [m, addresses.get(m)!]))),
    vnis: Object.fromEntries([...vnis].sort(([a], [b]) => byText(a, b))),
  };
}

type FamilyPools = Partial<Record<Family, Pool>>;
interface Pools {
  p2p: FamilyPools;
  lan: FamilyPools;
  vni: Interval;
}

function resolvePools(demand: LabDemand, refuse: Refuse): Pools {
  const resolve = (kind: "p2p" | "lan"): FamilyPools => {
    const given = demand.pools?.[kind] ?? {};
    const ipv4 = given.ipv4 ?? DEFAULT_POOLS[kind].ipv4;
    const pools: FamilyPools = {};
    if (ipv4 !== false) pools[4] = { network: parsePrefixed(ipv4), prefix: given.prefix ?? DEFAULT_POOLS[kind].prefix };
    if (given.ipv6) pools[6] = { network: parsePrefixed(given.ipv6), prefix: given.prefix6 ?? DEFAULT_POOLS[kind].prefix6 };
    for (const pool of Object.values(pools)) {
      const where = `pools.${kind}`;
      if (pool.prefix < pool.network.prefix) refuse(where, `subnets of /${pool.prefix} do not fit in ${formatPrefixed(pool.network)}`);
      // Seats are plain numbers; 2^48 subnets is beyond any lab.
      else if (pool.prefix - pool.network.prefix > 48)
        refuse(where, `${formatPrefixed(pool.network)} cut into /${pool.prefix} is too many subnets`);
    }
    return pools;
  };
  const vniPool = demand.pools?.vni;
  const pools = {
    p2p: resolve("p2p"),
    lan: resolve("lan"),
    vni: [vniPool?.from ?? DEFAULT_POOLS.vni.from, vniPool?.to ?? DEFAULT_POOLS.vni.to] as Interval,
  };
  for (const family of FAMILIES) {
    const [p2p, lan] = [pools.p2p[family], pools.lan[family]];
    if (p2p && lan && overlaps(p2p.network, lan.network)) {
      refuse("pools", `p2p ${formatPrefixed(p2p.network)} and lan ${formatPrefixed(lan.network)} overlap`);
    }
  }
  if (pools.vni[0] > pools.vni[1]) refuse("pools.vni", `from ${pools.vni[0]} is above to ${pools.vni[1]}`);
  return pools;
}

/** Per segment its subnets (IPv4 first): the one its explicit addresses imply, else a seat in its pool. */
function allocateSubnets(
  segments: DemandSegment[],
  pools: Pools,
  previous: LabAllocations | undefined,
  refuse: Refuse,
): Map<string, Prefixed[]> {
  const explicit = new Map<string, Partial<Record<Family, Prefixed>>>();
  const claimed: { subnet: Prefixed; label: string }[] = [];
  for (const s of segments) {
    const mine: Partial<Record<Family, Prefixed>> = {};
    for (const end of s.members) {
      for (const address of explicitOf(s, end)) {
        const subnet = networkOf(address);
        const range = hostRange(address);
        const host = Number(address.bits - subnet.bits);
        if (!range || host < range[0] || host > range[1]) {
          refuse(labelOf(s), `${formatPrefixed(address)} (${end}) is not a host address of ${formatPrefixed(subnet)}`);
        }
        const known = mine[address.family];
        if (!known) mine[address.family] = subnet;
        else if (known.bits !== subnet.bits || known.prefix !== subnet.prefix) {
          refuse(labelOf(s), `explicit addresses in ${formatPrefixed(known)} and ${formatPrefixed(subnet)}: one subnet per family`);
        }
      }
    }
    for (const subnet of Object.values(mine)) {
      const other = claimed.find((c) => overlaps(c.subnet, subnet));
      if (other) refuse(labelOf(s), `subnet ${formatPrefixed(subnet)} overlaps ${formatPrefixed(other.subnet)} of ${other.label}`);
      claimed.push({ subnet, label: labelOf(s) });
    }
    explicit.set(s.id, mine);
  }

  const pooled = new Map<string, Partial<Record<Family, Prefixed>>>(segments.map((s) => [s.id, {}]));
  for (const kind of ["p2p", "lan"] as const) {
    const wanting = segments.filter((s) => (kind === "p2p") === (s.kind === "link"));
    for (const family of FAMILIES) {
      const pool = pools[kind][family];
      if (!pool) continue;
      const needy = wanting.filter((s) => !explicit.get(s.id)![family]);
      const requests = needy.map((s): SeatRequest => {
        const before = previous?.subnets[s.id]?.map(parsePrefixed).find((p) => p.family === family && slotOf(pool, p) !== undefined);
        return { key: s.id, kept: before && slotOf(pool, before) };
      });
      const taken = claimed.map((c) => slotsCovered(pool, c.subnet)).filter((t): t is Interval => t !== undefined);
      const { seats, homeless } = allocateSeats(requests, [0, slotCount(pool) - 1], taken, `${kind}/ipv${family}`);
      for (const id of homeless) {
        refuse(
          `${kind === "p2p" ? "link" : "lan"} ${id}`,
          `pool ${kind} ${formatPrefixed(pool.network)} has ${slotCount(pool)} subnets of /${pool.prefix}` +
            `${taken.length > 0 ? " (some taken by explicit addresses)" : ""}, too few for ${wanting.length} ` +
            `${kind === "p2p" ? "links" : "LANs"}`,
        );
      }
      for (const [id, slot] of seats) pooled.get(id)![family] = slotNetwork(pool, slot);
    }
  }
  return new Map(segments.map((s) => [s.id, FAMILIES.flatMap((f) => explicit.get(s.id)![f] ?? pooled.get(s.id)![f] ?? [])]));
}

/**
 * Per endpoint its addresses (IPv4 first). Host numbers are seated per family over the same number of
 * seats with the same hash, so a member gets the same host number in both families unless one is explicit.
 * A new link's ends prefer the first and second host numbers, in the order the link names them.
 */
function allocateAddresses(
  segments: DemandSegment[],
  subnets: Map<string, Prefixed[]>,
  previous: LabAllocations | undefined,
  refuse: Refuse,
): Map<string, string[]> {
  const result = new Map<string, string[]>(segments.flatMap((s) => s.members.map((m) => [m, []] as [string, string[]])));
  for (const s of segments) {
    const mine = subnets.get(s.id)!;
    const ranges = mine.map((subnet) => hostRange(subnet)!);
    const seatsPerFamily = Math.min(...ranges.map(([first, last]) => last - first + 1));
    for (const [i, subnet] of mine.entries()) {
      const first = ranges[i][0];
      const hostNumber = (address: Prefixed | undefined) =>
        address && address.family === subnet.family && contains(subnet, address.bits) ? Number(address.bits - subnet.bits) : undefined;
      const pinnedBy = new Map<number, string>();
      const requests = s.members.map((m, position): SeatRequest => {
        const pinned = hostNumber(explicitOf(s, m).find((a) => a.family === subnet.family));
        if (pinned !== undefined) {
          const other = pinnedBy.get(pinned);
          if (other) refuse(labelOf(s), `"${other}" and "${m}" both have ${bitsToAddress(subnet.bits + BigInt(pinned), subnet.family)}`);
          pinnedBy.set(pinned, m);
        }
        const kept = hostNumber(previous?.addresses[m]?.map(parsePrefixed).find((a) => a.family === subnet.family));
        return { key: m, pinned, kept, preferred: s.kind === "link" ? first + position : undefined };
      });
      const { seats, homeless } = allocateSeats(requests, [first, first + seatsPerFamily - 1], [], `${s.kind}/${s.id}`);
      if (homeless.length > 0) {
        refuse(labelOf(s), `${s.members.length} members do not fit in ${formatPrefixed(subnet)} (${seatsPerFamily} host addresses)`);
        continue;
      }
      for (const m of s.members)
        result.get(m)!.push(`${bitsToAddress(subnet.bits + BigInt(seats.get(m)!), subnet.family)}/${subnet.prefix}`);
    }
  }
  return result;
}

function allocateVnis(
  spanning: DemandSegment[],
  [from, to]: Interval,
  salt: string,
  previous: LabAllocations | undefined,
  refuse: Refuse,
): Map<string, number> {
  const requests = spanning.map((s): SeatRequest => {
    const before = previous?.vnis[s.id];
    return { key: s.id, kept: before !== undefined && before >= from && before <= to ? before : undefined };
  });
  const { seats, homeless } = allocateSeats(requests, [from, to], [], `vni/${salt}`);
  for (const id of homeless) {
    refuse(
      `${spanning.find((x) => x.id === id)!.kind} ${id}`,
      `pools.vni ${from}..${to} has ${to - from + 1} VNIs, too few for ${spanning.length} segments across hosts`,
    );
  }
  return seats;
}

/** The resource that keeps a Lab's allocation; the shim's kind name for it. */
export const LAB_ALLOCATION = "LabAllocation";

/**
 * The LabAllocation resource's provider: nothing on any host. check allocates (keeping what `olds`, its
 * own last result, has) and puts the result among the inputs, so preview already shows it.
 */
export const labAllocationProvider = {
  async check(olds: Props, news: Props): Promise<{ inputs: Props; failures?: Failure[] }> {
    const demand = labDemand.safeParse(news.demand);
    const given = labAllocations.optional().safeParse(news.previous);
    if (!demand.success || !given.success) {
      const [property, issue] = demand.success ? ["previous", given.error!.issues[0]] : ["demand", demand.error.issues[0]];
      return { inputs: news, failures: [{ property, reason: `${[property, ...issue.path].join(".")}: ${issue.message}` }] };
    }
    const kept = labAllocations.safeParse(olds.allocations);
    const allocations = allocateLab(demand.data, kept.success ? kept.data : given.data);
    return { inputs: { ...news, allocations } };
  },
  /** Only the allocation counts. */
  async diff(_id: string, olds: Props, news: Props) {
    return { changes: !isDeepStrictEqual(olds.allocations, news.allocations), replaces: [], deleteBeforeReplace: false };
  },
  async create(inputs: Props): Promise<{ id: string; outs: Props }> {
    return { id: "allocations", outs: { allocations: inputs.allocations } };
  },
  async read(id: string, props: Props) {
    return { id, props };
  },
  async update(_id: string, _olds: Props, news: Props): Promise<{ outs: Props }> {
    return { outs: { allocations: news.allocations } };
  },
  async delete() {},
};
