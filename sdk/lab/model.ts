/**
 * The Lab topology model: a plain-data topology in, a plan of every object to make out. Pure (no
 * Pulumi, no I/O), so the component that turns a plan into resources stays thin and this stays testable.
 *
 * How a topology becomes objects:
 * - Every node is a namespace `namespacePrefix + node name` on its host.
 * - A link between two nodes on one host is one veth pair, each end (its `ifname`) in its namespace.
 * - A LAN, or a link whose ends are on two hosts, is a segment wired through a bridge on each host it
 *   touches: every member is a veth whose namespace end is the member's `ifname` and whose host end (a
 *   generated name) is on that bridge. A segment on several hosts also gets, per host, ONE VXLAN device on
 *   the bridge (on the underlay interface `underlayDevice`, eth0 by default): one VNI per segment, `local`
 *   the host's underlay address, `remotes` every other host's (head-end replication; the component gives a
 *   two-host segment a fixed `remote`, as stacks made before `remotes` have). Never a mesh of
 *   point-to-point tunnels: bridges joined pairwise over three hosts would loop.
 *   Its MTU defaults to the smallest of its hosts' `underlayMtu` (1500) minus VXLAN's 50 (IPv4) or 70 (IPv6) bytes.
 * - Addresses come from pools in netlab's style: links /30 from 10.1.0.0/16, LANs /24 from 172.16.0.0/16,
 *   IPv6 when a pool names an `ipv6` network (/64 each). Explicit `addresses` win and fix the subnet.
 * - Routers get forwarding (a per-namespace sysctl for each family they have addresses in).
 *
 * Stability: subnets, host addresses and VNIs are seated by a hash of their owner's identity (see
 * addressing.ts). A link's identity is its two ends, a LAN's its name; declaration order counts for
 * nothing. Pass a previous plan's `allocations` as `previous` to keep every seat even across hash collisions.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { bitsToAddress, canonicalAddress, cidr, hostName, interfaceName, ipAddress, MIN_MTU, mtu, namespaceName, networkCidr, port } from "../../provider/fields";
import {
  allocateSeats,
  contains,
  Family,
  formatPrefixed,
  hashSeat,
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
import { netemKind } from "../../provider/kinds/netem";
import { defaultVxlanMtu } from "../../provider/kinds/vxlan";
import { topologyDot, topologyMermaid } from "./graph";

const name = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, { message: "may use letters, digits and _ . - (not first)" });

/** "node:ifname"; the parts are checked once the nodes are known. */
const endpoint = z.string().regex(/^[^:\s]+:[^:\s]+$/, { message: 'an endpoint is "node:ifname", e.g. "r1:eth1"' });

/** Explicit addresses: endpoint → its addresses with prefix (one per family). */
const explicitAddresses = z.record(endpoint, z.array(cidr).min(1).max(2)).optional();

const poolSpec = z.object({
  ipv4: z.union([networkCidr, z.literal(false)]).optional().describe("IPv4 network to cut subnets from; false for none."),
  prefix: z.number().int().min(1).max(31).optional().describe("Prefix length of each IPv4 subnet."),
  ipv6: networkCidr.optional().describe("IPv6 network to cut subnets from; none by default."),
  prefix6: z.number().int().min(1).max(127).optional().describe("Prefix length of each IPv6 subnet (default 64)."),
});

const vni = z.number().int().min(1).max(16777215);

/** A link's impairment: Netem's settings without the interface, unknown keys refused (a typo would impair nothing). */
const impairment = z.object(netemKind.shape).omit({ device: true, namespace: true }).strict();
export type LinkImpairment = z.infer<typeof impairment>;

/** Previous allocations, exactly as a plan's `allocations`. */
const allocations = z.object({
  subnets: z.record(z.string(), z.array(cidr)),
  addresses: z.record(z.string(), z.array(cidr)),
  vnis: z.record(z.string(), vni),
});

const labSpec = z.object({
  /** Host name → SSH connection; only `host` is read here (the underlay address, unless `underlay` says). */
  hosts: z.record(name, z.looseObject({ host: hostName })),
  nodes: z.record(
    name,
    z.object({
      host: z.string(),
      router: z.boolean().optional(),
      /**
       * Static routes. `via` is a node sharing a link or LAN with this one (its address there is the
       * gateway; "node:ifname" picks one of several shared segments), or a gateway address on one of this
       * node's subnets. `destination: "default"` via a node gives a default route in each family both have.
       */
      routes: z.array(z.object({ destination: z.union([z.literal("default"), networkCidr]), via: z.string().min(1) })).optional(),
    }),
  ),
  links: z
    .array(
      z.object({
        endpoints: z.tuple([endpoint, endpoint]),
        mtu: mtu.optional(),
        /** Netem settings for the link; the Lab splits them over both ends (see LINK_IMPAIRMENT). */
        impairment: impairment.optional(),
        addresses: explicitAddresses,
      }),
    )
    .optional(),
  lans: z.record(name, z.object({ members: z.array(endpoint).min(1), mtu: mtu.optional(), addresses: explicitAddresses })).optional(),
  pools: z.object({ p2p: poolSpec.optional(), lan: poolSpec.optional(), vni: z.object({ from: vni, to: vni }).optional() }).optional(),
  /** Prepended to node names to make namespace names; also salts generated device names and VNIs. */
  namespacePrefix: z.string().optional(),
  /** VXLAN UDP port (the kernel's own default, 8472, is not the IANA one). */
  vxlanPort: port.optional(),
  /** Host name → underlay address for VXLAN, where the connection's `host` is not it (a DNS name, a NAT). */
  underlay: z.record(name, ipAddress).optional(),
  /** Host name → the interface VXLAN packets leave by (default eth0); its MTU sets the tunnel's default MTU. */
  underlayDevice: z.record(name, interfaceName).optional(),
  /** Host name → the MTU of its underlay (default 1500); VXLAN's overhead comes off it. */
  underlayMtu: z.record(name, mtu).optional(),
  previous: allocations.optional(),
});

export type LabSpec = z.input<typeof labSpec>;
export type LabAllocations = z.infer<typeof allocations>;

export const DEFAULT_POOLS = {
  p2p: { ipv4: "10.1.0.0/16", prefix: 30, prefix6: 64 },
  lan: { ipv4: "172.16.0.0/16", prefix: 24, prefix6: 64 },
  vni: { from: 10000, to: 16777215 },
} as const;
const DEFAULT_UNDERLAY_DEVICE = "eth0";
const DEFAULT_UNDERLAY_MTU = 1500;

export interface MemberPlan {
  node: string;
  host: string;
  namespace: string;
  ifname: string;
  /** "node:ifname". */
  endpoint: string;
  /** With prefix length, IPv4 first. */
  addresses: string[];
  /** The veth's end on the host, on the segment's bridge; unset for a same-host link (a direct veth pair). */
  hostVeth?: string;
}

export interface VxlanEndPlan {
  host: string;
  /** Device name on the host (on the bridge). */
  name: string;
  local: string;
  /** Every other host's underlay address, sorted: broadcasts are copied to each. */
  remotes: string[];
  /** Underlay interface on the host. */
  device: string;
}

export interface SegmentPlan {
  kind: "link" | "lan";
  /** Identity: a link's two endpoints in sorted order joined by "--", a LAN's name. Stable child names come from it. */
  id: string;
  /** Subnets with prefix, IPv4 first. */
  subnets: string[];
  members: MemberPlan[];
  mtu?: number;
  impairment?: LinkImpairment;
  /** Per host the segment touches, its bridge; empty for a same-host link. */
  bridges: { host: string; name: string }[];
  /** Set when the segment spans hosts. */
  vxlan?: { vni: number; port: number; ends: VxlanEndPlan[] };
}

export interface RoutePlan {
  destination: string;
  via: string;
  device: string;
}

export interface NodePlan {
  name: string;
  host: string;
  namespace: string;
  router: boolean;
  interfaces: { ifname: string; segment: string; addresses: string[] }[];
  routes: RoutePlan[];
  sysctls: { key: string; value: string }[];
}

export interface LabPlan {
  hosts: Record<string, { underlay: string }>;
  nodes: NodePlan[];
  links: SegmentPlan[];
  lans: SegmentPlan[];
  /** Segment id → VNI, for the segments that span hosts. */
  vnis: Record<string, number>;
  /** What to pass back as `previous` for seats that never move. */
  allocations: LabAllocations;
  dot: string;
  mermaid: string;
}

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

type Spec = z.infer<typeof labSpec>;

interface Segment {
  kind: "link" | "lan";
  id: string;
  label: string;
  members: { node: string; ifname: string; endpoint: string }[];
  mtu?: number;
  impairment?: LinkImpairment;
  explicit: Map<string, Prefixed[]>;
}

const FAMILIES: Family[] = [4, 6];
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Validates a topology and computes everything to create; throws LabTopologyError naming each problem. */
export function planLab(input: LabSpec): LabPlan {
  const parsed = labSpec.safeParse(input);
  if (!parsed.success) {
    throw new LabTopologyError(parsed.error.issues.map((i) => ({ where: i.path.map(String).join(".") || "(lab)", reason: i.message })));
  }
  const problems: LabProblem[] = [];
  const refuse = (where: string, reason: string) => problems.push({ where, reason });
  const check = () => {
    if (problems.length > 0) throw new LabTopologyError(problems);
  };
  const spec = parsed.data;
  const prefix = spec.namespacePrefix ?? "";

  for (const [node, n] of Object.entries(spec.nodes)) {
    if (!spec.hosts[n.host]) refuse(`node ${node}`, `unknown host "${n.host}" (hosts: ${Object.keys(spec.hosts).join(", ") || "none"})`);
    const ns = namespaceName.safeParse(prefix + node);
    if (!ns.success) refuse(`node ${node}`, `namespace "${prefix + node}": ${ns.error.issues[0].message}`);
  }
  const segments = collectSegments(spec, refuse);
  check();

  const pools = resolvePools(spec, refuse);
  check();
  const subnets = allocateSubnets(spec, segments, pools, refuse);
  check();
  const addresses = allocateAddresses(spec, segments, subnets, refuse);
  check();

  for (const setting of ["underlay", "underlayDevice", "underlayMtu"] as const) {
    for (const host of Object.keys(spec[setting] ?? {})) {
      if (!spec.hosts[host]) refuse(`${setting}.${host}`, `unknown host "${host}" (hosts: ${Object.keys(spec.hosts).join(", ")})`);
    }
  }
  check();
  // The kernel's spelling, so that two spellings of one address are seen as one (a name stays as given).
  const underlay = (host: string) => canonicalAddress(spec.underlay?.[host] ?? spec.hosts[host].host);
  const hostOf = (node: string) => spec.nodes[node].host;
  const segmentHosts = (s: Segment) => [...new Set(s.members.map((m) => hostOf(m.node)))].sort(byText);
  const spanning = segments.filter((s) => segmentHosts(s).length > 1);
  for (const host of [...new Set(spanning.flatMap(segmentHosts))].sort(byText)) {
    if (isIP(underlay(host)) === 0) {
      refuse(`host ${host}`, `"${underlay(host)}" is not an IP address, and VXLAN needs one: set underlay.${host}`);
    }
  }
  for (const s of spanning) {
    const families = new Set(segmentHosts(s).map((h) => isIP(underlay(h))));
    if (families.has(4) && families.has(6)) refuse(s.label, "its hosts' underlay addresses mix IPv4 and IPv6");
    const sharing = segmentHosts(s).filter((h, _i, all) => all.some((other) => other !== h && underlay(other) === underlay(h)));
    if (sharing.length > 0) {
      refuse(s.label, `hosts ${sharing.join(", ")} have the same underlay address ${underlay(sharing[0])}: a tunnel needs one per host (set underlay.HOST)`);
    }
  }
  check();
  // What fits through each host's tunnel; the segment's frames must fit through all of them.
  const tunnelMtu = (host: string) => defaultVxlanMtu(spec.underlayMtu?.[host] ?? DEFAULT_UNDERLAY_MTU, underlay(host));
  const spanningMtu = new Map(
    spanning.map((s) => {
      const narrowest = segmentHosts(s).reduce((a, b) => (tunnelMtu(b) < tunnelMtu(a) ? b : a));
      const fits = tunnelMtu(narrowest);
      if (fits < MIN_MTU) refuse(s.label, `host ${narrowest}'s underlayMtu leaves ${fits} bytes through the tunnel, below ${MIN_MTU}`);
      else if (s.mtu !== undefined && s.mtu > fits) {
        refuse(s.label, `mtu ${s.mtu} does not fit through the tunnel on host ${narrowest}: at most ${fits} (its underlayMtu minus VXLAN's overhead)`);
      }
      return [s.id, fits];
    }),
  );
  check();
  const vnis = allocateVnis(spec, spanning, pools.vni, prefix, refuse);
  check();

  const vxlanPort = spec.vxlanPort ?? 4789;
  const device = (role: string, ...identity: string[]) => generatedName(role, [prefix, ...identity].join("\0"));
  const segmentPlans = segments.map((s): SegmentPlan => {
    const hosts = segmentHosts(s);
    const bridged = s.kind === "lan" || hosts.length > 1;
    const members = s.members.map(
      (m): MemberPlan => ({
        ...m,
        host: hostOf(m.node),
        namespace: prefix + m.node,
        addresses: addresses.get(m.endpoint) ?? [],
        ...(bridged ? { hostVeth: device("v", s.id, m.endpoint) } : {}),
      }),
    );
    const vni = vnis.get(s.id);
    return {
      kind: s.kind,
      id: s.id,
      subnets: subnets.get(s.id)!.map(formatPrefixed),
      members,
      mtu: s.mtu ?? spanningMtu.get(s.id),
      ...(s.impairment ? { impairment: s.impairment } : {}),
      bridges: bridged ? hosts.map((host) => ({ host, name: device("b", s.id) })) : [],
      ...(vni !== undefined
        ? {
            vxlan: {
              vni,
              port: vxlanPort,
              ends: hosts.map((host) => ({
                host,
                name: device("x", s.id),
                local: underlay(host),
                remotes: hosts.filter((h) => h !== host).map(underlay).sort(),
                device: spec.underlayDevice?.[host] ?? DEFAULT_UNDERLAY_DEVICE,
              })),
            },
          }
        : {}),
    };
  });
  checkGeneratedNames(segmentPlans, refuse);

  const nodes = Object.keys(spec.nodes)
    .sort(byText)
    .map((node) => planNode(spec, node, prefix, segmentPlans, refuse));
  check();

  const plan = {
    hosts: Object.fromEntries(Object.keys(spec.hosts).sort(byText).map((h) => [h, { underlay: underlay(h) }])),
    nodes,
    links: segmentPlans.filter((s) => s.kind === "link"),
    lans: segmentPlans.filter((s) => s.kind === "lan"),
    vnis: Object.fromEntries([...vnis].sort(([a], [b]) => byText(a, b))),
    allocations: {
      subnets: Object.fromEntries(segmentPlans.map((s) => [s.id, s.subnets])),
      addresses: Object.fromEntries(segmentPlans.flatMap((s) => s.members.map((m) => [m.endpoint, m.addresses]))),
      vnis: Object.fromEntries([...vnis].sort(([a], [b]) => byText(a, b))),
    },
  };
  return { ...plan, dot: topologyDot(plan), mermaid: topologyMermaid(plan) };
}

/** Links and LANs as segments, sorted by identity; every endpoint checked and used once. */
function collectSegments(spec: Spec, refuse: (where: string, reason: string) => void): Segment[] {
  const segments: Segment[] = [];
  const owner = new Map<string, string>();
  const member = (label: string, text: string) => {
    const [node, ifname] = text.split(":");
    if (!spec.nodes[node]) return refuse(label, `unknown node "${node}" in endpoint "${text}"`);
    const valid = interfaceName.safeParse(ifname);
    if (!valid.success) return refuse(`node ${node}`, `interface "${ifname}" (${label}): ${valid.error.issues[0].message}`);
    // The namespace's loopback is already there; a veth cannot take its name.
    if (ifname === "lo") return refuse(`node ${node}`, `interface "lo" (${label}) is the namespace's loopback`);
    const other = owner.get(text);
    if (other) return refuse(`node ${node}`, `interface "${ifname}" is used twice: ${other} and ${label}`);
    owner.set(text, label);
    return { node, ifname, endpoint: text };
  };
  const explicit = (label: string, members: Segment["members"], given: Record<string, string[]> | undefined) => {
    const result = new Map<string, Prefixed[]>();
    for (const [end, list] of Object.entries(given ?? {})) {
      if (!members.some((m) => m.endpoint === end)) refuse(label, `addresses names "${end}", which is not one of its endpoints`);
      const parsed = list.map(parsePrefixed);
      if (new Set(parsed.map((p) => p.family)).size < parsed.length) refuse(label, `"${end}" has two addresses of one family`);
      result.set(end, parsed);
    }
    return result;
  };

  for (const link of spec.links ?? []) {
    const id = [...link.endpoints].sort(byText).join("--");
    const label = `link ${id}`;
    const [a, b] = link.endpoints.map((e) => e.split(":")[0]);
    if (a === b) {
      refuse(label, `connects node "${a}" to itself`);
      continue;
    }
    const ends = link.endpoints.map((e) => member(label, e));
    if (ends.some((e) => !e)) continue;
    const members = ends as Segment["members"];
    segments.push({ kind: "link", id, label, members, mtu: link.mtu, impairment: link.impairment, explicit: explicit(label, members, link.addresses) });
  }
  for (const [lan, given] of Object.entries(spec.lans ?? {})) {
    const label = `lan ${lan}`;
    const nodes = given.members.map((e) => e.split(":")[0]);
    const twice = nodes.find((n, i) => nodes.indexOf(n) !== i);
    if (twice) {
      refuse(label, `node "${twice}" joins it twice`);
      continue;
    }
    const ends = given.members.map((e) => member(label, e));
    if (ends.some((e) => !e)) continue;
    const members = ends as Segment["members"];
    segments.push({ kind: "lan", id: lan, label, members, mtu: given.mtu, explicit: explicit(label, members, given.addresses) });
  }
  return segments.sort((x, y) => byText(`${x.kind}/${x.id}`, `${y.kind}/${y.id}`));
}

type Refuse = (where: string, reason: string) => void;
type FamilyPools = Partial<Record<Family, Pool>>;
interface Pools {
  p2p: FamilyPools;
  lan: FamilyPools;
  vni: Interval;
}

function resolvePools(spec: Spec, refuse: Refuse): Pools {
  const resolve = (kind: "p2p" | "lan"): FamilyPools => {
    const given = spec.pools?.[kind] ?? {};
    const ipv4 = given.ipv4 ?? DEFAULT_POOLS[kind].ipv4;
    const pools: FamilyPools = {};
    if (ipv4 !== false) pools[4] = { network: parsePrefixed(ipv4), prefix: given.prefix ?? DEFAULT_POOLS[kind].prefix };
    if (given.ipv6) pools[6] = { network: parsePrefixed(given.ipv6), prefix: given.prefix6 ?? DEFAULT_POOLS[kind].prefix6 };
    for (const pool of Object.values(pools)) {
      const where = `pools.${kind}`;
      if (pool.prefix < pool.network.prefix) refuse(where, `subnets of /${pool.prefix} do not fit in ${formatPrefixed(pool.network)}`);
      // Seats are plain numbers; 2^48 subnets is beyond any lab.
      else if (pool.prefix - pool.network.prefix > 48) refuse(where, `${formatPrefixed(pool.network)} cut into /${pool.prefix} is too many subnets`);
    }
    return pools;
  };
  const pools = { p2p: resolve("p2p"), lan: resolve("lan"), vni: [spec.pools?.vni?.from ?? DEFAULT_POOLS.vni.from, spec.pools?.vni?.to ?? DEFAULT_POOLS.vni.to] as Interval };
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
function allocateSubnets(spec: Spec, segments: Segment[], pools: Pools, refuse: Refuse): Map<string, Prefixed[]> {
  const explicit = new Map<string, Partial<Record<Family, Prefixed>>>();
  const claimed: { subnet: Prefixed; label: string }[] = [];
  for (const s of segments) {
    const mine: Partial<Record<Family, Prefixed>> = {};
    for (const [end, list] of s.explicit) {
      for (const address of list) {
        const subnet = networkOf(address);
        const range = hostRange(address);
        const host = Number(address.bits - subnet.bits);
        if (!range || host < range[0] || host > range[1]) {
          refuse(s.label, `${formatPrefixed(address)} (${end}) is not a host address of ${formatPrefixed(subnet)}`);
        }
        const known = mine[address.family];
        if (!known) mine[address.family] = subnet;
        else if (known.bits !== subnet.bits || known.prefix !== subnet.prefix) {
          refuse(s.label, `explicit addresses in ${formatPrefixed(known)} and ${formatPrefixed(subnet)}: one subnet per family`);
        }
      }
    }
    for (const subnet of Object.values(mine)) {
      const other = claimed.find((c) => overlaps(c.subnet, subnet));
      if (other) refuse(s.label, `subnet ${formatPrefixed(subnet)} overlaps ${formatPrefixed(other.subnet)} of ${other.label}`);
      claimed.push({ subnet, label: s.label });
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
      const previous = (s: Segment) =>
        spec.previous?.subnets[s.id]?.map(parsePrefixed).find((p) => p.family === family && slotOf(pool, p) !== undefined);
      const requests = needy.map((s): SeatRequest => {
        const before = previous(s);
        return { key: s.id, preferred: before && slotOf(pool, before) };
      });
      const taken = claimed.map((c) => slotsCovered(pool, c.subnet)).filter((t): t is Interval => t !== undefined);
      const { seats, homeless } = allocateSeats(requests, [0, slotCount(pool) - 1], taken, `${kind}/ipv${family}`);
      for (const id of homeless) {
        refuse(
          `${kind === "p2p" ? "link" : "lan"} ${id}`,
          `pool ${kind} ${formatPrefixed(pool.network)} has ${slotCount(pool)} subnets of /${pool.prefix}` +
            `${taken.length > 0 ? " (some taken by explicit addresses)" : ""}, too few for ${wanting.length} ${kind === "p2p" ? "links" : "LANs"}`,
        );
      }
      for (const [id, slot] of seats) pooled.get(id)![family] = slotNetwork(pool, slot);
    }
  }
  return new Map(
    segments.map((s) => [s.id, FAMILIES.flatMap((f) => explicit.get(s.id)![f] ?? pooled.get(s.id)![f] ?? [])]),
  );
}

/**
 * Per endpoint its addresses (IPv4 first). Host numbers are seated per family over the same number of
 * seats with the same hash, so a member gets the same host number in both families unless one is explicit.
 * A link's ends prefer the first and second host numbers, in the order the link names them.
 */
function allocateAddresses(spec: Spec, segments: Segment[], subnets: Map<string, Prefixed[]>, refuse: Refuse): Map<string, string[]> {
  const result = new Map<string, string[]>(segments.flatMap((s) => s.members.map((m) => [m.endpoint, []] as [string, string[]])));
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
        const pinned = hostNumber(s.explicit.get(m.endpoint)?.find((a) => a.family === subnet.family));
        if (pinned !== undefined) {
          const other = pinnedBy.get(pinned);
          if (other) refuse(s.label, `"${other}" and "${m.endpoint}" both have ${bitsToAddress(subnet.bits + BigInt(pinned), subnet.family)}`);
          pinnedBy.set(pinned, m.endpoint);
        }
        const before = hostNumber(spec.previous?.addresses[m.endpoint]?.map(parsePrefixed).find((a) => a.family === subnet.family));
        const natural = s.kind === "link" ? first + position : undefined;
        return { key: m.endpoint, pinned, preferred: before ?? natural };
      });
      const { seats, homeless } = allocateSeats(requests, [first, first + seatsPerFamily - 1], [], `${s.kind}/${s.id}`);
      if (homeless.length > 0) {
        refuse(s.label, `${s.members.length} members do not fit in ${formatPrefixed(subnet)} (${seatsPerFamily} host addresses)`);
        continue;
      }
      for (const m of s.members) {
        result.get(m.endpoint)!.push(`${bitsToAddress(subnet.bits + BigInt(seats.get(m.endpoint)!), subnet.family)}/${subnet.prefix}`);
      }
    }
  }
  return result;
}

function allocateVnis(spec: Spec, spanning: Segment[], [from, to]: Interval, prefix: string, refuse: Refuse): Map<string, number> {
  const requests = spanning.map((s): SeatRequest => {
    const before = spec.previous?.vnis[s.id];
    return { key: s.id, preferred: before !== undefined && before >= from && before <= to ? before : undefined };
  });
  // Salted with the prefix: two labs on the same hosts should not pick the same VNIs.
  const { seats, homeless } = allocateSeats(requests, [from, to], [], `vni/${prefix}`);
  for (const id of homeless) {
    const s = spanning.find((x) => x.id === id)!;
    refuse(s.label, `pools.vni ${from}..${to} has ${to - from + 1} VNIs, too few for ${spanning.length} segments across hosts`);
  }
  return seats;
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** "nl" + role + "-" + 10 base32 characters of a hash: 14 bytes, within IFNAMSIZ, unlikely to meet a name a person chose. */
function generatedName(role: string, identity: string): string {
  const hash = hashSeat("ifname", identity, 0, 2 ** 50);
  const digits = Array.from({ length: 10 }, (_, i) => BASE32[Math.floor(hash / 32 ** i) % 32]).join("");
  return `nl${role}-${digits}`;
}

/** Generated names must not meet on a host; with 50 bits of hash they should not, but a clash must not reach the kernel. */
function checkGeneratedNames(segments: SegmentPlan[], refuse: Refuse): void {
  const seen = new Map<string, string>();
  for (const s of segments) {
    const names = [
      ...s.bridges.map((b) => [b.host, b.name]),
      ...s.members.filter((m) => m.hostVeth).map((m) => [m.host, m.hostVeth!]),
      ...(s.vxlan?.ends ?? []).map((e) => [e.host, e.name]),
    ];
    for (const [host, device] of names) {
      const other = seen.get(`${host}/${device}`);
      if (other) refuse(`${s.kind} ${s.id}`, `its generated device name ${device} on host ${host} is already ${other}'s; rename one`);
      seen.set(`${host}/${device}`, `${s.kind} ${s.id}`);
    }
  }
}

const FORWARDING = { 4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding" } as const;
const withoutPrefix = (address: string) => address.split("/")[0];

function planNode(spec: Spec, node: string, prefix: string, segments: SegmentPlan[], refuse: Refuse): NodePlan {
  const n = spec.nodes[node];
  const where = `node ${node}`;
  const attached = segments.flatMap((segment) => segment.members.filter((m) => m.node === node).map((member) => ({ segment, member })));
  const families = [...new Set(attached.flatMap(({ member }) => member.addresses.map((a) => parsePrefixed(a).family)))].sort();
  const addressIn = (member: MemberPlan, family: Family) => member.addresses.find((a) => parsePrefixed(a).family === family);

  const routes: RoutePlan[] = [];
  for (const route of n.routes ?? []) {
    const about = `route to ${route.destination} via ${route.via}`;
    const destination = route.destination === "default" ? "default" : formatPrefixed(parsePrefixed(route.destination));
    const destinationFamily = destination === "default" ? undefined : parsePrefixed(destination).family;
    if (isIP(route.via) !== 0) {
      const family = isIP(route.via) as Family;
      const gateway = parsePrefixed(`${route.via}/${family === 4 ? 32 : 128}`);
      if (destinationFamily && destinationFamily !== family) {
        refuse(where, `${about}: the gateway and the destination are of different IP families`);
        continue;
      }
      const on = attached.find(({ member }) => {
        const own = addressIn(member, family);
        return own !== undefined && contains(parsePrefixed(own), gateway.bits);
      });
      if (!on) refuse(where, `${about}: ${route.via} is on none of ${node}'s subnets`);
      else if (on.member.addresses.some((a) => parsePrefixed(a).bits === gateway.bits)) refuse(where, `${about}: ${route.via} is ${node}'s own address`);
      else routes.push({ destination, via: bitsToAddress(gateway.bits, family), device: on.member.ifname });
      continue;
    }
    const [peer, peerIfname] = route.via.split(":");
    if (!spec.nodes[peer]) {
      refuse(where, `${about}: unknown node "${peer}"`);
      continue;
    }
    if (peer === node) {
      refuse(where, `${about}: a node cannot route via itself`);
      continue;
    }
    if (!spec.nodes[peer].router) {
      refuse(where, `${about}: ${peer} is not a router (router: true gives it forwarding)`);
      continue;
    }
    const shared = attached
      .map(({ segment, member }) => ({ member, gateway: segment.members.find((m) => m.node === peer && (!peerIfname || m.ifname === peerIfname)) }))
      .filter((x): x is { member: MemberPlan; gateway: MemberPlan } => x.gateway !== undefined);
    if (shared.length === 0) {
      refuse(where, `${about}: ${peer}${peerIfname ? `:${peerIfname}` : ""} shares no link or LAN with ${node}`);
      continue;
    }
    if (shared.length > 1) {
      refuse(where, `${about}: ${peer} shares several links or LANs with ${node}; name one of ${shared.map((x) => `"${x.gateway.endpoint}"`).join(", ")}`);
      continue;
    }
    const [{ member, gateway }] = shared;
    const usable = (destinationFamily ? [destinationFamily] : FAMILIES).filter((f) => addressIn(member, f) && addressIn(gateway, f));
    if (usable.length === 0) refuse(where, `${about}: ${node} and ${peer} have no addresses of that family in common on ${member.endpoint}`);
    for (const f of usable) routes.push({ destination, via: withoutPrefix(addressIn(gateway, f)!), device: member.ifname });
  }
  const keys = routes.map((r) => `${r.destination} ipv${isIP(r.via)}`);
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice) refuse(where, `two routes to ${twice.replace(" ipv", " (IPv")})`);

  return {
    name: node,
    host: n.host,
    namespace: prefix + node,
    router: n.router ?? false,
    interfaces: attached.map(({ segment, member }) => ({ ifname: member.ifname, segment: segment.id, addresses: member.addresses })),
    routes,
    sysctls: n.router ? families.map((f) => ({ key: FORWARDING[f], value: "1" })) : [],
  };
}
