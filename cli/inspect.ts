/**
 * `pulumi-netns inspect`: every node and segment of a stack, as `clab inspect` shows a lab. What the stack
 * made comes from its state (cli/topology.ts); the interfaces' addresses and state and the services'
 * processes from the hosts now, one listing of every namespace per host.
 */
import type { IpLinkJson } from "../provider/iproute";
import { listLinks } from "../provider/iproute";
import { serviceStatus, ServiceStatus } from "../provider/kinds/service";
import { closeAllHosts, hostFor } from "../provider/ssh/pool";
import { choice, noMoreOperands, parseArgs } from "./args";
import { noting } from "./node";
import { readExistingStack, STACK_HELP, STACK_OPTIONS, stackOptions, StackOptions } from "./stack";
import { renderTable } from "./table";
import { Impairment, NodeView, SegmentView, Topology, topologyOf } from "./topology";

export const INSPECT_HELP = `pulumi-netns inspect [--stack NAME] [--cwd DIR] [--format table|json]

Every node of the stack, with its host, namespace, interfaces (their addresses and state as the host has
them now) and services, and every segment, with its kind, hosts, VNI, impairment and whether it is up.
A Lab's nodes and segments are its own (links and LANs); plain resources show by host and namespace,
their veths, bridges and VXLAN devices as segments.

${STACK_HELP}
  --format FORMAT      table (default), or json for scripts
`;

export interface InspectOptions extends StackOptions {
  format: "table" | "json";
}

export function parseInspectArgs(args: string[]): InspectOptions {
  const parsed = parseArgs(args, { values: { ...STACK_OPTIONS.values, "--format": "format" } });
  noMoreOperands(parsed, 0);
  return { ...stackOptions(parsed), format: choice(parsed, "format", "--format", ["table", "json"] as const, "table") };
}

/** What a host has now: every namespace's links with their addresses ("" is the host's own), each service's process. */
export interface HostLook {
  links?: Map<string, IpLinkJson[]>;
  services?: Map<string, ServiceStatus | undefined>;
  /** Why the host could not be asked. */
  error?: string;
}

/** "up", "down", "lowerlayerdown" (a veth whose other end is down); "missing" when the host lacks it; "unknown" when it was not asked. */
type InterfaceState = string;

export interface InspectReport {
  stack: string;
  hosts: { name: string; target: string; error?: string }[];
  nodes: (Omit<NodeView, "interfaces" | "services"> & {
    interfaces: { name: string; addresses: string[]; state: InterfaceState }[];
    services: { name: string; command: string[]; state: "running" | "stopped" | "not started" | "unknown"; pid?: number }[];
  })[];
  segments: (Omit<SegmentView, "down"> & { state: "up" | "down" })[];
}

const serviceKey = (namespace: string, name: string) => `${namespace}/${name}`;

/** Asks each host with nodes on it, side by side; a host that cannot be reached is reported, not fatal. */
export async function lookAtHosts(topology: Topology): Promise<Map<string, HostLook>> {
  const looks = new Map<string, HostLook>();
  try {
    await Promise.all(
      [...new Set(topology.nodes.map((n) => n.host))].map(async (name) => {
        const host = hostFor(topology.connections.get(name)!);
        const onHost = topology.nodes.filter((n) => n.host === name);
        const services = onHost.flatMap((n) => n.services.map((s) => [n.namespace, s.name] as const));
        const status = async ([namespace, service]: readonly [string, string]) =>
          [serviceKey(namespace, service), await serviceStatus(host, namespace, service)] as const;
        try {
          const [links, statuses] = await Promise.all([listLinks(host), Promise.all(services.map(status))]);
          looks.set(name, { links, services: new Map(statuses) });
        } catch (err) {
          looks.set(name, { error: err instanceof Error ? err.message : String(err) });
        }
      }),
    );
  } finally {
    closeAllHosts();
  }
  return looks;
}

/** Addresses as `ip` lists them, without the link-local ones every IPv6 interface has. */
const liveAddresses = (link: IpLinkJson) =>
  (link.addr_info ?? []).filter((a) => a.scope !== "link").map((a) => `${a.local}/${a.prefixlen}`);

export function inspectReport(stack: string, topology: Topology, looks: Map<string, HostLook>): InspectReport {
  const nodes = topology.nodes.map((node) => {
    const look = looks.get(node.host);
    const live = look?.links?.get(node.namespace);
    const declared = [...node.interfaces].sort((a, b) => a.name.localeCompare(b.name));
    const others = (live ?? []).filter((link) => link.ifname !== "lo" && !declared.some((i) => i.name === link.ifname));
    const interfaces = [
      ...declared.map((i) => {
        const link = live?.find((l) => l.ifname === i.name);
        if (link) return { name: i.name, addresses: liveAddresses(link), state: (link.operstate ?? "unknown").toLowerCase() };
        return { name: i.name, addresses: i.addresses, state: look?.links ? "missing" : "unknown" };
      }),
      ...others.map((link) => ({ name: link.ifname, addresses: liveAddresses(link), state: (link.operstate ?? "unknown").toLowerCase() })),
    ];
    const services = node.services.map((service) => {
      if (!look?.services) return { ...service, state: "unknown" as const };
      const status = look.services.get(serviceKey(node.namespace, service.name));
      if (!status) return { ...service, state: "not started" as const };
      return { ...service, state: status.running ? ("running" as const) : ("stopped" as const), pid: status.pid };
    });
    return { ...node, interfaces, services };
  });
  return {
    stack,
    hosts: [...topology.hosts]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, target]) => {
        const error = looks.get(name)?.error;
        return { name, target, ...(error ? { error } : {}) };
      }),
    nodes,
    segments: topology.segments.map(({ down, ...segment }) => ({ ...segment, state: down ? "down" : "up" })),
  };
}

/** "delayMs=20 lossPercent=1": Netem's own names for the settings, as a program gives them. */
const impairmentText = (impairment: Impairment | undefined) =>
  impairment
    ? Object.entries(impairment)
        .map(([field, value]) => `${field}=${value}`)
        .join(" ")
    : "-";

const serviceText = (s: InspectReport["nodes"][number]["services"][number]) =>
  `${s.name}: ${s.state}${s.pid !== undefined ? `, pid ${s.pid}` : ""}`;

function nodeRows(nodes: InspectReport["nodes"]): string[][] {
  return nodes.flatMap((node) => {
    const lines = Math.max(1, node.interfaces.length, node.services.length);
    return Array.from({ length: lines }, (_, i) => {
      const iface = node.interfaces[i];
      const service = node.services[i];
      return [
        ...(i === 0 ? [node.name, node.host, node.namespace] : ["", "", ""]),
        iface?.name ?? "",
        iface ? iface.addresses.join(", ") || "-" : "",
        iface?.state ?? "",
        service ? serviceText(service) : "",
      ];
    });
  });
}

function segmentRows(segments: InspectReport["segments"]): string[][] {
  return segments.map((s) => [
    s.id,
    s.kind,
    s.hosts.join(","),
    s.vni === undefined ? "-" : String(s.vni),
    impairmentText(s.impairment),
    s.state,
    s.members.join(" "),
  ]);
}

const NODE_COLUMNS = ["NODE", "HOST", "NAMESPACE", "INTERFACE", "ADDRESSES", "STATE", "SERVICES"];
const SEGMENT_COLUMNS = ["SEGMENT", "KIND", "HOSTS", "VNI", "IMPAIRMENT", "STATE", "MEMBERS"];

export function renderInspect(report: InspectReport): string {
  const hostWords = (names: string[]) => names.map((name) => `${name} (${report.hosts.find((h) => h.name === name)!.target})`).join(", ");
  const section = (title: string, nodes: InspectReport["nodes"], segments: InspectReport["segments"]) => [
    `${title} on ${hostWords([...new Set([...nodes.map((n) => n.host), ...segments.flatMap((s) => s.hosts)])].sort())}`,
    "",
    renderTable(NODE_COLUMNS, nodeRows(nodes)),
    ...(segments.length > 0 ? ["", renderTable(SEGMENT_COLUMNS, segmentRows(segments))] : []),
  ];
  const labs = [...new Set(report.nodes.flatMap((n) => (n.lab ? [n.lab] : [])))];
  const plainNodes = report.nodes.filter((n) => !n.lab);
  const plainSegments = report.segments.filter((s) => !s.lab);
  const sections = [
    ...labs.map((lab) =>
      section(
        `lab "${lab}"`,
        report.nodes.filter((n) => n.lab === lab),
        report.segments.filter((s) => s.lab === lab),
      ),
    ),
    ...(plainNodes.length + plainSegments.length > 0 ? [section("plain resources", plainNodes, plainSegments)] : []),
  ];
  const notAsked = report.hosts
    .filter((h) => h.error)
    .map((h) => `${h.name}: not asked: ${h.error} (its interfaces show as the stack made them)`);
  const body = sections.length > 0 ? sections.map((lines) => lines.join("\n")) : ["no nodes: the stack has no Lab and no namespace"];
  return [`stack ${report.stack}`, ...body, ...notAsked].join("\n\n") + "\n";
}

/** Prints the report; exit code 1 when a host could not be asked. */
export async function inspect(options: InspectOptions, write: (text: string) => void): Promise<number> {
  const { owner, state } = await readExistingStack(options);
  const topology = topologyOf(state);
  const hosts = [...new Set(topology.nodes.map((n) => n.host))].sort().join(", ");
  const looks = await noting(lookAtHosts(topology), 2_000, `asking ${hosts} for their interfaces and services…`);
  const report = inspectReport(owner, topology, looks);
  write(options.format === "json" ? `${JSON.stringify(report, null, 2)}\n` : renderInspect(report));
  return report.hosts.some((h) => h.error) ? 1 : 0;
}
