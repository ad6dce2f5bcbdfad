/**
 * The Lab's planner: a plain-data topology in (spec.ts), a plan of every object to make out (plan.ts).
 * Pure (no Pulumi, no I/O), so the component that turns a plan into resources stays thin and this stays
 * testable. Drawing a plan is the renderer's (graph.ts).
 *
 * How a topology becomes objects:
 * - Every node is a namespace `namespacePrefix + node name` on its host.
 * - A link between two nodes on one host is one veth pair, each end (its `ifname`) in its namespace.
 * - A LAN, or a link whose ends are on two hosts, is a segment wired through a bridge on each host it
 *   touches: every member is a veth whose namespace end is the member's `ifname` and whose host end (a
 *   generated name) is on that bridge. A segment on several hosts also gets, per host, ONE VXLAN device on
 *   the bridge (on the underlay interface `underlayDevice`, eth0 by default): one VNI per segment, `local`
 *   the host's underlay address, `remotes` every other host's (head-end replication, so the segment grows
 *   and shrinks in place). Never a mesh of point-to-point tunnels: bridges joined pairwise over three
 *   hosts would loop. Its MTU defaults to the smallest of its hosts' `underlayMtu` (1500) minus VXLAN's
 *   50 (IPv4) or 70 (IPv6) bytes.
 * - Addresses come from pools in netlab's style: links /30 from 10.1.0.0/16, LANs /24 from 172.16.0.0/16,
 *   IPv6 when a pool names an `ipv6` network (/64 each). Explicit `addresses` win and fix the subnet.
 * - Routers get forwarding (a per-namespace sysctl for each family they have addresses in); routes come
 *   from routes.ts, checks from checks.ts.
 *
 * Stability: subnets, host addresses and VNIs come from allocateLab (allocation.ts), which keeps every
 * seat of `previous` (the Lab passes its LabAllocation resource's last result) and seats what is new by a
 * hash of its identity: a link's two ends, a LAN's name; declaration order counts for nothing.
 */
import { isIP } from "node:net";
import { canonicalAddress, interfaceName, MIN_MTU, namespaceName } from "../../provider/fields";
import { defaultVxlanMtu, VXLAN_PORT } from "../../provider/kindSettings";
import { parsePrefixed } from "../../provider/lab/addressing";
import { LabTopologyError, problemList, Refuse } from "../../provider/lab/allocation";
import { allocate, checkDeviceNames, deviceName } from "./allocation";
import { planChecks } from "./checks";
import type { Attachment, LabPlan, MemberPlan, NodePlan, Segment, SegmentPlan } from "./plan";
import { planRoutes } from "./routes";
import { CheckedLabSpec, LabSpec, labSpec } from "./spec";

const DEFAULT_UNDERLAY_DEVICE = "eth0";
const DEFAULT_UNDERLAY_MTU = 1500;

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
  const { demand, allocations } = allocate(spec, segments, spanning);

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
      const hosts = `hosts ${sharing.join(", ")} have the same underlay address ${underlay(sharing[0])}`;
      refuse(s.label, `${hosts}: a tunnel needs one per host (set underlay.HOST)`);
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
        const limit = `at most ${fits} (its underlayMtu minus VXLAN's overhead)`;
        refuse(s.label, `mtu ${s.mtu} does not fit through the tunnel on host ${narrowest}: ${limit}`);
      }
      return [s.id, fits];
    }),
  );
  check();

  const vxlanPort = spec.vxlanPort ?? VXLAN_PORT;
  const device = (role: string, ...identity: string[]) => deviceName(prefix, role, ...identity);
  const segmentPlans = segments.map((s): SegmentPlan => {
    const hosts = segmentHosts(s);
    const bridged = s.kind === "lan" || hosts.length > 1;
    const members = s.members.map((m): MemberPlan => ({
      ...m,
      host: hostOf(m.node),
      namespace: prefix + m.node,
      addresses: allocations.addresses[m.endpoint],
      ...(bridged ? { hostVeth: device("v", s.id, m.endpoint) } : {}),
    }));
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
                remotes: hosts
                  .filter((h) => h !== host)
                  .map(underlay)
                  .sort(),
                device: spec.underlayDevice?.[host] ?? DEFAULT_UNDERLAY_DEVICE,
              })),
            },
          }
        : {}),
    };
  });
  checkDeviceNames(segmentPlans, refuse);

  const nodes = Object.keys(spec.nodes)
    .sort(byText)
    .map((node) => planNode(spec, node, prefix, segmentPlans, refuse));
  check();
  planChecks(spec, nodes, refuse);
  check();

  return {
    hosts: Object.fromEntries(
      Object.keys(spec.hosts)
        .sort(byText)
        .map((h) => [h, { underlay: underlay(h) }]),
    ),
    nodes,
    links: segmentPlans.filter((s) => s.kind === "link"),
    lans: segmentPlans.filter((s) => s.kind === "lan"),
    vnis: allocations.vnis,
    allocations,
    demand,
  };
}

/** Links and LANs as segments, sorted by identity; every endpoint checked and used once. */
function collectSegments(spec: CheckedLabSpec, refuse: Refuse): Segment[] {
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
    const addresses = explicit(label, members, link.addresses);
    segments.push({ kind: "link", id, label, members, mtu: link.mtu, impairment: link.impairment, addresses });
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

function planNode(spec: CheckedLabSpec, node: string, prefix: string, segments: SegmentPlan[], refuse: Refuse): NodePlan {
  const n = spec.nodes[node];
  const attached = segments.flatMap((segment) =>
    segment.members.filter((m) => m.node === node).map((member): Attachment => ({ segment, member })),
  );
  const families = new Set(attached.flatMap(({ member }) => member.addresses.map((a) => parsePrefixed(a).family)));
  const router = n.router ?? false;
  return {
    name: node,
    host: n.host,
    namespace: prefix + node,
    router,
    interfaces: attached.map(({ segment, member }) => ({
      ifname: member.ifname,
      segment: segment.id,
      addresses: member.addresses,
      ...(member.down ? { down: true as const } : {}),
    })),
    routes: planRoutes(spec, node, attached, refuse),
    forwarding: { ipv4: router && families.has(4), ipv6: router && families.has(6) },
    services: n.services ?? {},
    checks: [],
  };
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
