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
 *   the host's underlay address, `remotes` every other host's (head-end replication, so the segment grows
 *   and shrinks in place). Never a mesh of
 *   point-to-point tunnels: bridges joined pairwise over three hosts would loop.
 *   Its MTU defaults to the smallest of its hosts' `underlayMtu` (1500) minus VXLAN's 50 (IPv4) or 70 (IPv6) bytes.
 * - Addresses come from pools in netlab's style: links /30 from 10.1.0.0/16, LANs /24 from 172.16.0.0/16,
 *   IPv6 when a pool names an `ipv6` network (/64 each). Explicit `addresses` win and fix the subnet.
 * - Routers get forwarding (a per-namespace sysctl for each family they have addresses in).
 *
 * Stability: subnets, host addresses and VNIs come from allocateLab (provider/lab/allocation.ts), which
 * keeps every seat of `previous` (the Lab passes its LabAllocation resource's last result) and seats what
 * is new by a hash of its identity: a link's two ends, a LAN's name; declaration order counts for nothing.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { bitsToAddress, canonicalAddress, cidr, hostName, interfaceName, ipAddress, MIN_MTU, mtu, namespaceName, networkCidr, port } from "../../provider/fields";
import { contains, Family, formatPrefixed, hashSeat, parsePrefixed } from "../../provider/lab/addressing";
import { allocateLab, LabAllocations, labAllocations, LabDemand, LabTopologyError, poolsSpec, problemList, Refuse } from "../../provider/lab/allocation";
import { CheckTarget, targetKey } from "../../provider/kinds/check";
import { netemKind } from "../../provider/kinds/netem";
import { serviceKind } from "../../provider/kinds/service";
import { defaultVxlanMtu } from "../../provider/kinds/vxlan";
import { topologyDot, topologyMermaid } from "./graph";

export { LabTopologyError };
export type { LabAllocations, LabDemand, LabProblem } from "../../provider/lab/allocation";

const name = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, { message: "may use letters, digits and _ . - (not first)" });

/** "node:ifname"; the parts are checked once the nodes are known. */
const endpoint = z.string().regex(/^[^:\s]+:[^:\s]+$/, { message: 'an endpoint is "node:ifname", e.g. "r1:eth1"' });

/** Explicit addresses: endpoint → its addresses with prefix (one per family). */
const explicitAddresses = z.record(endpoint, z.array(cidr).min(1).max(2)).optional();

/** A link's impairment: Netem's settings without the interface, unknown keys refused (a typo would impair nothing). */
const impairment = z.object(netemKind.shape).omit({ device: true, namespace: true }).strict();
export type LinkImpairment = z.infer<typeof impairment>;

/** A node's service: Service's settings without where it runs (the node's namespace) or its name (its key). */
const serviceSettings = z.object(serviceKind.shape).omit({ name: true, namespace: true }).strict();
export type LabService = z.input<typeof serviceSettings>;

/**
 * What should be reachable: `to` is a node (its first address, on an interface that is up if it has one), "node:PORT"
 * (tcp unless `protocol` says udp), or an address. "all-pairs" adds every node to every other, by ICMP.
 */
const expectation = z
  .object({
    from: z.string(),
    to: z.string().min(1),
    protocol: z.enum(["icmp", "tcp", "udp"]).optional(),
    port: port.optional(),
    expect: z.enum(["reachable", "unreachable"]).optional(),
    maxLossPercent: z.number().min(0).max(100).optional(),
    maxRttMs: z.number().positive().optional(),
  })
  .strict();
export type LabExpectation = z.input<typeof expectation>;

/** A LAN member: its endpoint, or the endpoint and whether its cable is pulled. */
const lanMember = z.union([endpoint, z.object({ endpoint, down: z.boolean().optional() }).strict()]);

export const labSpec = z.object({
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
      routes: z
        .array(z.object({ destination: z.union([z.literal("default"), networkCidr]), via: z.string().min(1), metric: z.number().int().min(0).max(2 ** 32 - 1).optional() }))
        .optional(),
      /** Long-running processes in the node's namespace, started once its addresses and routes exist. */
      services: z.record(name, serviceSettings).optional(),
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
        /** Both ends administratively down, as a pulled cable; false or unset brings them up again, in place. */
        down: z.boolean().optional(),
      }),
    )
    .optional(),
  lans: z.record(name, z.object({ members: z.array(lanMember).min(1), mtu: mtu.optional(), addresses: explicitAddresses })).optional(),
  /** Declared reachability, checked by one Check per source node after everything else is made. */
  expect: z.union([z.literal("all-pairs"), z.array(z.union([z.literal("all-pairs"), expectation]))]).optional(),
  pools: poolsSpec.optional(),
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
  previous: labAllocations.optional(),
});

export type LabSpec = z.input<typeof labSpec>;

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
  /** Both ends of its cable are down (the link's `down`, or the LAN member's). */
  down?: true;
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
  /**
   * A same-host link's veth pair is made by its first node (by name) with the other end in the host's
   * namespace under this name, until the second node takes it (see provider/kinds/labNode.ts).
   */
  park?: string;
  /** Set when the segment spans hosts. */
  vxlan?: { vni: number; port: number; ends: VxlanEndPlan[] };
}

export interface RoutePlan {
  destination: string;
  via: string;
  device: string;
  metric?: number;
}

export interface NodePlan {
  name: string;
  host: string;
  namespace: string;
  router: boolean;
  interfaces: { ifname: string; segment: string; addresses: string[]; down?: true }[];
  routes: RoutePlan[];
  /** IP forwarding per family: a router has it in each family it has addresses in. */
  forwarding: { ipv4: boolean; ipv6: boolean };
  services: Record<string, z.infer<typeof serviceSettings>>;
  /** What this node's Check probes: explicit expectations from it, and "all-pairs". */
  checks: CheckTarget[];
}

export interface LabPlan {
  hosts: Record<string, { underlay: string }>;
  nodes: NodePlan[];
  links: SegmentPlan[];
  lans: SegmentPlan[];
  /** Segment id → VNI, for the segments that span hosts. */
  vnis: Record<string, number>;
  /** Every subnet, address and VNI; as `previous`, every seat in it is kept. */
  allocations: LabAllocations;
  /** What the allocation was made from (the LabAllocation resource's input). */
  demand: LabDemand;
  dot: string;
  mermaid: string;
}

type Spec = z.infer<typeof labSpec>;

interface Segment {
  kind: "link" | "lan";
  id: string;
  label: string;
  members: { node: string; ifname: string; endpoint: string; down?: true }[];
  mtu?: number;
  impairment?: LinkImpairment;
  /** Explicit addresses by endpoint. */
  addresses?: Record<string, string[]>;
}

const FAMILIES: Family[] = [4, 6];
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Validates a topology and computes everything to create; throws LabTopologyError naming each problem. */
export function planLab(input: LabSpec): LabPlan {
  const parsed = labSpec.safeParse(input);
  if (!parsed.success) {
    throw new LabTopologyError(parsed.error.issues.map((i) => ({ where: i.path.map(String).join(".") || "(lab)", reason: i.message })));
  }
  const { refuse, check } = problemList();
  const spec = parsed.data;
  const prefix = spec.namespacePrefix ?? "";

  for (const [node, n] of Object.entries(spec.nodes)) {
    if (!spec.hosts[n.host]) refuse(`node ${node}`, `unknown host "${n.host}" (hosts: ${Object.keys(spec.hosts).join(", ") || "none"})`);
    const ns = namespaceName.safeParse(prefix + node);
    if (!ns.success) refuse(`node ${node}`, `namespace "${prefix + node}": ${ns.error.issues[0].message}`);
  }
  const segments = collectSegments(spec, refuse);
  check();
  const hostOf = (node: string) => spec.nodes[node].host;
  const segmentHosts = (s: Segment) => [...new Set(s.members.map((m) => hostOf(m.node)))].sort(byText);
  const spanning = segments.filter((s) => segmentHosts(s).length > 1);
  const demand: LabDemand = {
    segments: segments.map((s) => ({
      kind: s.kind,
      id: s.id,
      members: s.members.map((m) => m.endpoint),
      ...(s.addresses ? { addresses: s.addresses } : {}),
      ...(spanning.includes(s) ? { spanning: true as const } : {}),
    })),
    ...(spec.pools ? { pools: spec.pools } : {}),
    salt: prefix,
  };
  const allocations = allocateLab(demand, spec.previous);

  for (const setting of ["underlay", "underlayDevice", "underlayMtu"] as const) {
    for (const host of Object.keys(spec[setting] ?? {})) {
      if (!spec.hosts[host]) refuse(`${setting}.${host}`, `unknown host "${host}" (hosts: ${Object.keys(spec.hosts).join(", ")})`);
    }
  }
  check();
  // The kernel's spelling, so that two spellings of one address are seen as one (a name stays as given).
  const underlay = (host: string) => canonicalAddress(spec.underlay?.[host] ?? spec.hosts[host].host);
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
        addresses: allocations.addresses[m.endpoint],
        ...(bridged ? { hostVeth: device("v", s.id, m.endpoint) } : {}),
      }),
    );
    const vni = allocations.vnis[s.id];
    return {
      kind: s.kind,
      id: s.id,
      subnets: allocations.subnets[s.id],
      members,
      mtu: s.mtu ?? spanningMtu.get(s.id),
      ...(s.impairment ? { impairment: s.impairment } : {}),
      bridges: bridged ? hosts.map((host) => ({ host, name: device("b", s.id) })) : [],
      ...(bridged ? {} : { park: device("p", s.id) }),
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
  planChecks(spec, nodes, refuse);
  check();

  const plan = {
    hosts: Object.fromEntries(Object.keys(spec.hosts).sort(byText).map((h) => [h, { underlay: underlay(h) }])),
    nodes,
    links: segmentPlans.filter((s) => s.kind === "link"),
    lans: segmentPlans.filter((s) => s.kind === "lan"),
    vnis: allocations.vnis,
    allocations,
    demand,
  };
  return { ...plan, dot: topologyDot(plan), mermaid: topologyMermaid(plan) };
}

/** Links and LANs as segments, sorted by identity; every endpoint checked and used once. */
function collectSegments(spec: Spec, refuse: (where: string, reason: string) => void): Segment[] {
  const segments: Segment[] = [];
  const owner = new Map<string, string>();
  const member = (label: string, text: string, down?: boolean) => {
    const [node, ifname] = text.split(":");
    if (!spec.nodes[node]) return refuse(label, `unknown node "${node}" in endpoint "${text}"`);
    const valid = interfaceName.safeParse(ifname);
    if (!valid.success) return refuse(`node ${node}`, `interface "${ifname}" (${label}): ${valid.error.issues[0].message}`);
    // The namespace's loopback is already there; a veth cannot take its name.
    if (ifname === "lo") return refuse(`node ${node}`, `interface "lo" (${label}) is the namespace's loopback`);
    const other = owner.get(text);
    if (other) return refuse(`node ${node}`, `interface "${ifname}" is used twice: ${other} and ${label}`);
    owner.set(text, label);
    return { node, ifname, endpoint: text, ...(down ? { down: true as const } : {}) };
  };
  /** Explicit addresses as given, once they name the segment's own endpoints, one per family. */
  const explicit = (label: string, members: Segment["members"], given: Record<string, string[]> | undefined) => {
    for (const [end, list] of Object.entries(given ?? {})) {
      if (!members.some((m) => m.endpoint === end)) refuse(label, `addresses names "${end}", which is not one of its endpoints`);
      if (new Set(list.map((a) => parsePrefixed(a).family)).size < list.length) refuse(label, `"${end}" has two addresses of one family`);
    }
    return given;
  };

  for (const link of spec.links ?? []) {
    const id = [...link.endpoints].sort(byText).join("--");
    const label = `link ${id}`;
    const [a, b] = link.endpoints.map((e) => e.split(":")[0]);
    if (a === b) {
      refuse(label, `connects node "${a}" to itself`);
      continue;
    }
    const ends = link.endpoints.map((e) => member(label, e, link.down));
    if (ends.some((e) => !e)) continue;
    const members = ends as Segment["members"];
    segments.push({ kind: "link", id, label, members, mtu: link.mtu, impairment: link.impairment, addresses: explicit(label, members, link.addresses) });
  }
  for (const [lan, given] of Object.entries(spec.lans ?? {})) {
    const label = `lan ${lan}`;
    const listed = given.members.map((m) => (typeof m === "string" ? { endpoint: m } : m));
    const nodes = listed.map((m) => m.endpoint.split(":")[0]);
    const twice = nodes.find((n, i) => nodes.indexOf(n) !== i);
    if (twice) {
      refuse(label, `node "${twice}" joins it twice`);
      continue;
    }
    const ends = listed.map((m) => member(label, m.endpoint, m.down));
    if (ends.some((e) => !e)) continue;
    const members = ends as Segment["members"];
    segments.push({ kind: "lan", id: lan, label, members, mtu: given.mtu, addresses: explicit(label, members, given.addresses) });
  }
  return segments.sort((x, y) => byText(`${x.kind}/${x.id}`, `${y.kind}/${y.id}`));
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
      ...(s.park ? [[s.members[0].host, s.park]] : []),
    ];
    for (const [host, device] of names) {
      const other = seen.get(`${host}/${device}`);
      if (other) refuse(`${s.kind} ${s.id}`, `its generated device name ${device} on host ${host} is already ${other}'s; rename one`);
      seen.set(`${host}/${device}`, `${s.kind} ${s.id}`);
    }
  }
}

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
      else routes.push({ destination, via: bitsToAddress(gateway.bits, family), device: on.member.ifname, ...metricOf(route) });
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
    for (const f of usable) routes.push({ destination, via: withoutPrefix(addressIn(gateway, f)!), device: member.ifname, ...metricOf(route) });
  }
  // Two routes to one place must differ in metric: the kernel keeps one route per destination and metric
  // (unset is 0 for IPv4, 1024 for IPv6, and IPv6 stores 0 as 1024).
  const effectiveMetric = (r: RoutePlan) => (isIP(r.via) === 6 ? r.metric || 1024 : (r.metric ?? 0));
  const keys = routes.map((r) => `${r.destination} ${isIP(r.via)} ${effectiveMetric(r)}`);
  const twice = routes.find((_r, i) => keys.indexOf(keys[i]) !== i);
  if (twice) refuse(where, `two routes to ${twice.destination} (IPv${isIP(twice.via)}) with metric ${effectiveMetric(twice)} (give one another metric)`);

  return {
    name: node,
    host: n.host,
    namespace: prefix + node,
    router: n.router ?? false,
    interfaces: attached.map(({ segment, member }) => ({
      ifname: member.ifname,
      segment: segment.id,
      addresses: member.addresses,
      ...(member.down ? { down: true as const } : {}),
    })),
    routes,
    forwarding: { ipv4: (n.router ?? false) && families.includes(4), ipv6: (n.router ?? false) && families.includes(6) },
    services: n.services ?? {},
    checks: [],
  };
}

const metricOf = (route: { metric?: number }) => (route.metric !== undefined ? { metric: route.metric } : {});

/** A node's address for checks: the first on an interface that is up (else on any), IPv4 first. */
const primaryAddress = (node: NodePlan) =>
  (node.interfaces.find((i) => !i.down && i.addresses.length > 0) ?? node.interfaces.find((i) => i.addresses.length > 0))?.addresses[0];

/** Each node's Check targets, from `expect`: explicit expectations win over "all-pairs" for the same target. */
function planChecks(spec: Spec, nodes: NodePlan[], refuse: Refuse): void {
  const list = spec.expect === undefined ? [] : spec.expect === "all-pairs" ? ["all-pairs" as const] : spec.expect;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const targets = new Map(nodes.map((n) => [n.name, new Map<string, CheckTarget>()]));
  if (list.includes("all-pairs")) {
    for (const from of nodes) {
      for (const to of nodes) {
        const address = primaryAddress(to);
        if (to === from || !address) continue;
        const target: CheckTarget = { address: withoutPrefix(address), protocol: "icmp", expect: "reachable", label: to.name };
        targets.get(from.name)!.set(targetKey(target), target);
      }
    }
  }
  list.forEach((entry, i) => {
    if (entry === "all-pairs") return;
    const where = `expect[${i}]`;
    if (!byName.has(entry.from)) return refuse(where, `unknown node "${entry.from}" (nodes: ${[...byName.keys()].join(", ")})`);
    let address = isIP(entry.to) !== 0 ? canonicalAddress(entry.to) : undefined;
    let port = entry.port;
    if (!address) {
      const [node, suffix] = entry.to.split(":");
      if (suffix !== undefined && !/^\d+$/.test(suffix)) return refuse(where, `"${entry.to}" is a node, "node:PORT" or an address`);
      if (suffix !== undefined) port = Number(suffix);
      const to = byName.get(node);
      if (!to) return refuse(where, `unknown node "${node}" (nodes: ${[...byName.keys()].join(", ")})`);
      const primary = primaryAddress(to);
      if (!primary) return refuse(where, `node "${node}" has no address`);
      address = withoutPrefix(primary);
    }
    const protocol = entry.protocol ?? (port !== undefined ? "tcp" : "icmp");
    if ((protocol === "icmp") !== (port === undefined)) return refuse(where, protocol === "icmp" ? "icmp takes no port" : `${protocol} needs a port ("node:PORT" or port)`);
    const target: CheckTarget = {
      address,
      protocol,
      ...(port !== undefined ? { port } : {}),
      expect: entry.expect ?? "reachable",
      label: entry.to,
      ...(entry.maxLossPercent !== undefined ? { maxLossPercent: entry.maxLossPercent } : {}),
      ...(entry.maxRttMs !== undefined ? { maxRttMs: entry.maxRttMs } : {}),
    };
    targets.get(entry.from)!.set(targetKey(target), target);
  });
  for (const node of nodes) node.checks = [...targets.get(node.name)!.values()];
}

/** What one host's kernel holds by default in its neighbour (ARP) table, all namespaces together. */
export const NEIGHBOUR_TABLE_DEFAULT = 1024;

/**
 * Per host, the neighbour entries all-pairs checks make at most: each member of a segment resolves every
 * other member. The kernel's table is one per host, shared by every namespace (gc_thresh3): past it,
 * new neighbours are refused and pings are lost.
 */
export function neighbourEntries(plan: Pick<LabPlan, "links" | "lans">): Record<string, number> {
  const entries: Record<string, number> = {};
  for (const segment of [...plan.links, ...plan.lans]) {
    for (const member of segment.members) entries[member.host] = (entries[member.host] ?? 0) + segment.members.length - 1;
  }
  return entries;
}
