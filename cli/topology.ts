/**
 * What a stack made, as the command line shows it, from its state alone (what the hosts have now is
 * inspect's part): nodes, each a namespace on a host (a Lab's nodes, and the namespaces that plain
 * resources make or use), the segments between them, and each Lab's plan as far as its pictures need it.
 *
 * A Lab keeps its topology in its children: the LabAllocation (segments, their members, subnets, VNIs), one
 * LabNode per node (namespace, interfaces, routes), LabSegment per segment and host (named
 * LAB/SEGMENT/HOST, which is where the Lab's host names come from), Netem per impaired end (LAB/NODE:IF).
 */
import type { Connection } from "../provider/connection";
import { targetIdentity, targetLabel } from "../provider/connection";
import { SET_PROPERTIES } from "../provider/kind";
import { netemKind } from "../provider/kinds/netem";
import { isRecord } from "../provider/validate";
import type { topologyDot } from "../sdk/lab/graph";
import { linkImpairment } from "../sdk/lab/impairment";
import type { StackResource, StackState } from "./stack";

/** A Lab's plan as its pictures draw it (sdk/lab/graph.ts). */
export type DrawnLab = Parameters<typeof topologyDot>[0];
type SegmentPlan = DrawnLab["links"][number];
type MemberPlan = SegmentPlan["members"][number];
type NodePlan = DrawnLab["nodes"][number];

export interface InterfaceView {
  name: string;
  /** With prefix length, as the stack made them. */
  addresses: string[];
  /** As the stack set it: false for a pulled cable's end. */
  up: boolean;
}

export interface ServiceView {
  name: string;
  command: string[];
}

export interface NodeView {
  /** How commands name it: the Lab's node name, or a plain namespace's name (with @HOST, or LAB/, where two would meet). */
  name: string;
  lab?: string;
  host: string;
  namespace: string;
  router?: boolean;
  interfaces: InterfaceView[];
  services: ServiceView[];
}

/** A non-zero setting of an impairment, by Netem's names: delayMs, lossPercent… */
export type Impairment = Record<string, number>;

export interface SegmentView {
  /** A Lab's link ("a:if--b:if") or LAN name; a plain resource's device name. */
  id: string;
  lab?: string;
  kind: "link" | "lan" | "veth" | "bridge" | "vxlan";
  hosts: string[];
  /** Its ends: "NODE:IF" in a Lab; "NAMESPACE:IF" for plain resources, "HOST:IF" in a host's own namespace. */
  members: string[];
  subnets?: string[];
  vni?: number;
  impairment?: Impairment;
  /** A pulled cable (a Lab's `down`), or a plain device set down. */
  down: boolean;
}

export interface Topology {
  /** Host name → its target (user@host:port). A Lab's hosts by the Lab's names, others by their target. */
  hosts: Map<string, string>;
  nodes: NodeView[];
  segments: SegmentView[];
  labs: { name: string; plan: DrawnLab }[];
  /** Host name → how to reach it. Carries credentials: never printed. */
  connections: Map<string, Connection>;
}

const IMPAIRMENT_FIELDS = Object.keys(netemKind.shape).filter((field) => field !== "device" && field !== "namespace");

/** The settings a Netem resource was given that impair something: not zeros, nor the `limit` it worked out itself. */
function impairmentOf(netem: StackResource): Impairment {
  const given = strings(netem.outputs[SET_PROPERTIES]);
  const value = (field: string) => netem.outputs[field];
  const impairing = IMPAIRMENT_FIELDS.filter((f) => given.includes(f) && typeof value(f) === "number" && value(f) !== 0);
  return Object.fromEntries(impairing.map((f) => [f, value(f) as number]));
}

const strings = (value: unknown): string[] => (Array.isArray(value) ? value.filter((item) => typeof item === "string") : []);
const text = (value: unknown): string | undefined => (typeof value === "string" && value !== "" ? value : undefined);

/** A segment's part on a host: a LabSegment, or a Bridge (with a Vxlan) in a stack not yet moved to LabSegment. */
const SEGMENT_PARTS = ["LabSegment", "Bridge", "Vxlan"];

/** Host names: a Lab's, from its segments' parts (LAB/SEGMENT/HOST); any other host by its target. */
function hostNames(state: StackState, labs: StackResource[]) {
  const named = new Map<string, string>();
  for (const lab of labs) {
    const segmentEnds = state.resources.filter((r) => r.parent === lab.urn && SEGMENT_PARTS.includes(r.kind) && r.connection);
    for (const child of segmentEnds) {
      const host = child.name.split("/").pop()!;
      if (!named.has(targetIdentity(child.connection!))) named.set(targetIdentity(child.connection!), host);
    }
  }
  const hosts = new Map<string, string>();
  const connections = new Map<string, Connection>();
  const nameOf = (connection: Connection) => {
    const name = named.get(targetIdentity(connection)) ?? targetLabel(connection);
    hosts.set(name, targetLabel(connection));
    if (!connections.has(name)) connections.set(name, connection);
    return name;
  };
  return { nameOf, hosts, connections };
}

function labTopology(state: StackState, lab: StackResource, nameOf: (c: Connection) => string): DrawnLab {
  const children = state.resources.filter((r) => r.parent === lab.urn);
  const child = (kind: string, name: string) => children.find((r) => r.kind === kind && r.name === `${lab.name}/${name}`);
  const allocation = children.find((r) => r.kind === "LabAllocation");
  type Demand = { segments?: { kind: "link" | "lan"; id: string; members: string[] }[] };
  const demand = (allocation?.inputs.demand ?? allocation?.outputs.demand) as Demand | undefined;
  const allocations = (allocation?.outputs.allocations ?? {}) as { subnets?: Record<string, string[]>; vnis?: Record<string, number> };
  const labNodes = children.filter((r) => r.kind === "LabNode" && r.connection);
  const nodeNamed = new Map(labNodes.map((r) => [r.name.slice(lab.name.length + 1), r]));
  type MadeInterface = { addresses?: string[]; up?: boolean; mtu?: number; bridge?: { hostEnd: string }; pair?: { park: string } };
  const interfaceOf = (node: StackResource, ifname: string) =>
    (isRecord(node.outputs.interfaces) ? node.outputs.interfaces[ifname] : undefined) as MadeInterface | undefined;

  const segments: SegmentPlan[] = (demand?.segments ?? []).map((segment) => {
    const members = segment.members.flatMap((endpoint): MemberPlan[] => {
      const [node, ifname] = endpoint.split(":");
      const made = nodeNamed.get(node);
      const given = made && interfaceOf(made, ifname);
      if (!made || !given) return [];
      return [
        {
          node,
          host: nameOf(made.connection!),
          namespace: String(made.outputs.name),
          ifname,
          endpoint,
          addresses: strings(given.addresses),
          ...(given.bridge ? { hostVeth: given.bridge.hostEnd } : {}),
          ...(given.up === false ? { down: true as const } : {}),
        },
      ];
    });
    const hosts = [...new Set(members.map((m) => m.host))].sort();
    const hostParts = hosts.flatMap((host) => {
      const part = child("LabSegment", `${segment.id}/${host}`) ?? child("Bridge", `${segment.id}/${host}`);
      return part ? [{ host, part }] : [];
    });
    const tunnelEnds = hostParts.flatMap(({ host, part }) => {
      const vxlan = isRecord(part.outputs.vxlan) ? part.outputs.vxlan : child("Vxlan", `${segment.id}/${host}`)?.outputs;
      return vxlan ? [{ host, vxlan }] : [];
    });
    const netem = members.map((m) => child("Netem", m.endpoint)).find((r) => r);
    const firstEnd = members.length > 0 ? interfaceOf(nodeNamed.get(members[0].node)!, members[0].ifname) : undefined;
    const vni = allocations.vnis?.[segment.id];
    return {
      kind: segment.kind,
      id: segment.id,
      subnets: allocations.subnets?.[segment.id] ?? [],
      members,
      ...(firstEnd?.mtu !== undefined ? { mtu: firstEnd.mtu } : {}),
      ...(netem ? { impairment: linkImpairment(impairmentOf(netem)) as SegmentPlan["impairment"] } : {}),
      bridges: hostParts.map(({ host, part }) => ({ host, name: String(part.outputs.name) })),
      ...(firstEnd?.pair ? { park: firstEnd.pair.park } : {}),
      ...(vni !== undefined && tunnelEnds.length > 0
        ? {
            vxlan: {
              vni,
              port: Number(tunnelEnds[0].vxlan.dstport),
              ends: tunnelEnds.map(({ host, vxlan }) => ({
                host,
                name: String(vxlan.name),
                local: String(vxlan.local),
                remotes: strings(vxlan.remotes),
                device: String(vxlan.device),
              })),
            },
          }
        : {}),
    };
  });

  const nodes: NodePlan[] = [...nodeNamed]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, made]) => {
      const forwarding = (made.outputs.forwarding ?? {}) as { ipv4?: boolean; ipv6?: boolean };
      const attached = segments.flatMap((segment) => segment.members.filter((m) => m.node === name).map((m) => ({ segment, m })));
      return {
        name,
        host: nameOf(made.connection!),
        namespace: String(made.outputs.name),
        router: forwarding.ipv4 === true || forwarding.ipv6 === true,
        interfaces: attached.map(({ segment, m }) => ({
          ifname: m.ifname,
          segment: segment.id,
          addresses: m.addresses,
          ...(m.down ? { down: true as const } : {}),
        })),
        routes: (Array.isArray(made.outputs.routes) ? made.outputs.routes : []) as NodePlan["routes"],
        forwarding: { ipv4: forwarding.ipv4 === true, ipv6: forwarding.ipv6 === true },
        services: {},
        checks: [],
      };
    });
  const underlay = (host: string) => {
    const end = segments.flatMap((s) => s.vxlan?.ends ?? []).find((e) => e.host === host);
    return end?.local ?? nodes.map((n) => nodeNamed.get(n.name)!).find((made) => nameOf(made.connection!) === host)!.connection!.host;
  };
  const hosts = Object.fromEntries([...new Set(nodes.map((n) => n.host))].sort().map((host) => [host, { underlay: underlay(host) }]));
  return { hosts, nodes, links: segments.filter((s) => s.kind === "link"), lans: segments.filter((s) => s.kind === "lan") };
}

/** A device's end: "" is the host's own namespace. */
interface PlainInterface {
  namespace: string;
  name: string;
  up: boolean;
}

/** The devices plain resources make, each end of a veth on its own. */
function plainDevices(resource: StackResource): { segment: SegmentView["kind"]; ends: PlainInterface[] } | undefined {
  const { outputs } = resource;
  const end = (fields: Record<string, unknown>) => ({
    namespace: text(fields.namespace) ?? "",
    name: String(fields.name),
    up: fields.up !== false,
  });
  if (resource.kind === "Veth") return { segment: "veth", ends: [end(outputs), ...(isRecord(outputs.peer) ? [end(outputs.peer)] : [])] };
  if (resource.kind === "Bridge" || resource.kind === "LabSegment") return { segment: "bridge", ends: [end(outputs)] };
  if (resource.kind === "Vxlan") return { segment: "vxlan", ends: [end(outputs)] };
  return undefined;
}

export function topologyOf(state: StackState): Topology {
  const labs = state.resources.filter((r) => r.kind === "Lab");
  const labUrns = new Set(labs.map((lab) => lab.urn));
  const { nameOf, hosts, connections } = hostNames(state, labs);
  const nodes: NodeView[] = [];
  const segments: SegmentView[] = [];
  const drawn: Topology["labs"] = [];

  for (const lab of labs) {
    const plan = labTopology(state, lab, nameOf);
    drawn.push({ name: lab.name, plan });
    for (const n of plan.nodes) {
      nodes.push({
        name: n.name,
        lab: lab.name,
        host: n.host,
        namespace: n.namespace,
        router: n.router,
        interfaces: n.interfaces.map((i) => ({ name: i.ifname, addresses: i.addresses, up: !i.down })),
        services: [],
      });
    }
    for (const s of [...plan.links, ...plan.lans]) {
      segments.push({
        id: s.id,
        lab: lab.name,
        kind: s.kind,
        hosts: [...new Set(s.members.map((m) => m.host))].sort(),
        members: s.members.map((m) => m.endpoint),
        subnets: s.subnets,
        ...(s.vxlan ? { vni: s.vxlan.vni } : {}),
        ...(s.impairment ? { impairment: s.impairment as Impairment } : {}),
        down: s.members.some((m) => m.down),
      });
    }
  }

  // Plain resources: every namespace they make or use is a node; their devices are segments.
  const plain = state.resources.filter((r) => r.connection && !(r.parent && labUrns.has(r.parent)));
  const plainNodes: NodeView[] = [];
  /** The node of a namespace: a Lab's node, when plain resources use its namespace too. */
  const nodeAt = (host: string, namespace: string) => {
    const at = (n: NodeView) => n.host === host && n.namespace === namespace;
    let node = nodes.find(at) ?? plainNodes.find(at);
    if (!node) plainNodes.push((node = { name: namespace, host, namespace, interfaces: [], services: [] }));
    return node;
  };
  for (const resource of plain) {
    const host = nameOf(resource.connection!);
    const namespace = resource.kind === "Namespace" ? text(resource.outputs.name) : text(resource.outputs.namespace);
    if (namespace) nodeAt(host, namespace);
    const devices = plainDevices(resource);
    if (!devices) continue;
    for (const end of devices.ends.filter((e) => e.namespace)) {
      nodeAt(host, end.namespace).interfaces.push({ name: end.name, addresses: [], up: end.up });
    }
    const impairs = (r: StackResource) =>
      devices.ends.some((e) => e.name === r.outputs.device && e.namespace === (text(r.outputs.namespace) ?? ""));
    const netem = plain.find((r) => r.kind === "Netem" && nameOf(r.connection!) === host && impairs(r));
    segments.push({
      id: devices.ends[0].name,
      kind: devices.segment,
      hosts: [host],
      members: devices.ends.map((e) => `${e.namespace || host}:${e.name}`),
      ...(resource.kind === "Vxlan" ? { vni: Number(resource.outputs.vni) } : {}),
      ...(netem ? { impairment: impairmentOf(netem) } : {}),
      down: devices.ends.some((e) => !e.up),
    });
  }
  for (const address of plain.filter((r) => r.kind === "Address" && text(r.outputs.namespace))) {
    const node = nodeAt(nameOf(address.connection!), String(address.outputs.namespace));
    const device = node.interfaces.find((i) => i.name === address.outputs.device);
    if (device) device.addresses.push(String(address.outputs.address));
    else node.interfaces.push({ name: String(address.outputs.device), addresses: [String(address.outputs.address)], up: true });
  }
  // Services, a Lab's or plain: on their node's host, in its namespace.
  for (const service of state.resources.filter((r) => r.kind === "Service" && r.connection && text(r.outputs.namespace))) {
    const node = nodeAt(nameOf(service.connection!), String(service.outputs.namespace));
    const command = service.secretOutputs.includes("command") ? ["[secret]"] : strings(service.outputs.command);
    node.services.push({ name: String(service.outputs.name), command });
  }
  nodes.push(...plainNodes.sort((a, b) => a.host.localeCompare(b.host) || a.namespace.localeCompare(b.namespace)));
  return { hosts, nodes: uniquelyNamed(nodes), segments, labs: drawn, connections };
}

/** Where two nodes share a name (two Labs, or a namespace on two hosts), each is named by its Lab or host as well. */
function uniquelyNamed(nodes: NodeView[]): NodeView[] {
  const count = (name: string) => nodes.filter((n) => n.name === name).length;
  return nodes.map((n) => (count(n.name) === 1 ? n : { ...n, name: n.lab ? `${n.lab}/${n.name}` : `${n.name}@${n.host}` }));
}

/** The node a command names; an unknown name is refused with the list of known ones. */
export function findNode(topology: Topology, stack: string, name: string): NodeView {
  const node = topology.nodes.find((n) => n.name === name);
  if (node) return node;
  const known = topology.nodes.map((n) => n.name).sort();
  throw new Error(`unknown node "${name}" in stack ${stack} (${known.length > 0 ? `nodes: ${known.join(", ")}` : "it has no nodes"})`);
}
