/**
 * `LabNode`: one node of a Lab as ONE resource: its namespace, the interfaces of its cables, their
 * addresses, its routes and forwarding. A Lab of 1,000 nodes is then about 1,000 resources, not 4,000:
 * at that size the time goes to the engine, which rewrites its checkpoint after every step.
 *
 * Create and update share one path: read the namespace, work out every command that brings it to the
 * spec (`convergeSteps`, pure), run them as one remote step, read it back. So an update that was cut
 * short, or a create that runs again after an interrupted `up`, carries on from what is there.
 *
 * Cables: a LAN member or the end of a link across hosts is a veth whose host end is on the segment's
 * bridge (`bridge`). A link between two nodes of one host is one veth pair between their namespaces;
 * neither node's resource can make it alone (each needs the other's namespace), so the node whose
 * name sorts first makes it with the other end parked in the host's namespace under a generated name
 * (`pair.role: "make"`), and the other node, created after it, takes that end (`"take"`).
 */
import { isIP } from "node:net";
import { z } from "zod";
import { canonicalCidr, cidr, interfaceName, ipAddress, mtu, namespaceName, networkCidr } from "../fields";
import { Argv, Host, inNamespace, inOneStep, listEveryNamespace } from "../host";
import { IpLinkJson, linkDeleteArgv, LinkChange, linkSetArgv, listLinks, runUnlessGone } from "../iproute";
import { defineKind, neverCollides, Props } from "../kind";
import { HOLDERS_ROOT, namespaceIdentity } from "../holders";
import { aliasOwner, objectOwner, ownerRecordPath, ownerTag, ownerToken, setAliasArgv } from "../owner";
import { addressArgv } from "./address";
import { makeNamespace, releaseNamespace } from "./namespace";
import { parseRoutes, RouteEntry, routeArgv } from "./route";
import { sysctlWritesArgv } from "./sysctl";
import { vethAddArgv } from "./veth";

const labInterface = z
  .object({
    bridge: z
      .object({
        name: interfaceName.describe("The bridge on the host."),
        hostEnd: interfaceName.describe("Name of the cable's end on the host, on the bridge."),
      })
      .optional()
      .describe("A cable to a bridge on the host (a LAN, or a link across hosts)."),
    pair: z
      .object({
        park: interfaceName.describe("Name of the other end in the host's namespace until the other node takes it."),
        role: z.enum(["make", "take"]).describe("make: this node makes the pair; take: it takes the end the other node parked."),
      })
      .optional()
      .describe("A cable to another node on the same host: one veth pair between the two namespaces."),
    mtu: mtu.default(1500).describe("MTU of this end (and of the host end of a bridge cable)."),
    up: z.boolean().default(true).describe("Administrative state; a node's end of a pulled cable is down."),
    addresses: z.array(cidr).default([]).describe("Addresses with prefix length. IPv6 ones are kept in state only while the interface is down (the kernel drops them)."),
  })
  .refine((i) => (i.bridge === undefined) !== (i.pair === undefined), { message: "give exactly one of bridge and pair" });

const labRoute = z.object({
  destination: z.union([z.literal("default"), networkCidr]).describe('Destination network, or "default".'),
  via: ipAddress.describe("Gateway address, on the subnet of `device`."),
  device: interfaceName.describe("One of this node's interfaces."),
  metric: z.number().int().min(0).max(2 ** 32 - 1).optional().describe("Route metric (the kernel's default when unset)."),
});

export type LabNodeInterface = z.input<typeof labInterface>;
export type LabNodeRoute = z.input<typeof labRoute>;
type Interface = z.infer<typeof labInterface>;
type Route = z.infer<typeof labRoute>;

interface LabNodeSpec {
  name: string;
  interfaces: Record<string, Interface>;
  routes: Route[];
  forwarding: { ipv4: boolean; ipv6: boolean };
}

/** What is on the host for one node, however it was read (one command per part, or a refresh's listings). */
export interface NodeState {
  /** The namespace's links with their addresses. */
  links: IpLinkJson[];
  /** A link of the host's own namespace (a bridge cable's host end, a parked end). */
  hostLink(name: string): IpLinkJson | undefined;
  routes: InstalledRoute[];
  forwarding: { ipv4: boolean; ipv6: boolean };
}

export type InstalledRoute = RouteEntry & { family: 4 | 6 };

const familyOf = (address: string) => (isIP(address.split("/")[0]) === 6 ? 6 : 4);
const FORWARDING = { ipv4: "net.ipv4.ip_forward", ipv6: "net.ipv6.conf.all.forwarding" } as const;

/** Record folders of a node's namespace: owner records of addresses and routes, sysctl holder records. */
const recordFolders = (ns: string) => [ownerRecordPath("addr", ns), ownerRecordPath("route", ns), [HOLDERS_ROOT, "sysctl", "netns", ns].join("/")];

/**
 * The first update of a node that was a Lab's Namespace (a stack made before LabNode): the addresses and
 * routes in it now carry this node's owner, and the sysctl records of its namespace go, so that the
 * deletes of the Lab's old Address, Route and Sysctl resources, at the end of that same update, leave
 * what this node took over (see takenOver in owner.ts). Its interfaces get its owner as their alias.
 */
const TAKE_OVER = `tag=$1 sysctls=$4
rm -rf "$sysctls" || exit
for dir in "$2" "$3"; do
  if [ -d "$dir" ]; then find "$dir" -type f -exec sh -c 'for f; do printf "%s\\n" "$0" >"$f"; done' "$tag" {} + || exit; fi
done`;
const takeOverArgv = (ns: string, owner: string): Argv => ["sh", "-c", TAKE_OVER, "sh", ownerTag(owner), ...recordFolders(ns)];

/** Addresses the node manages: global ones (link-local IPv6 ones come with the interface). */
const globalAddresses = (link: IpLinkJson | undefined) =>
  (link?.addr_info ?? []).filter((a) => (a.scope ?? "global") === "global").map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`));

const isUp = (link: IpLinkJson) => (link.flags ?? []).includes("UP");

/** The kernel's identity of a route: family, destination and metric (IPv6 stores none as 1024). */
const routeKey = (family: 4 | 6, r: { destination: string; metric?: number }) => `${family} ${r.destination} ${family === 6 ? r.metric || 1024 : (r.metric ?? 0)}`;
const installedKey = (r: InstalledRoute) => routeKey(r.family, r);
const wantedKey = (r: Route) => routeKey(familyOf(r.via), r);

/** IPv6 addresses and routes through an interface that is down are in state only: the kernel drops them. */
const suspended = (spec: LabNodeSpec, device: string, family: number) => spec.interfaces[device]?.up === false && family === 6;
const routeSuspended = (spec: LabNodeSpec, route: Route) => spec.interfaces[route.device]?.up === false;

/** The interface's cable is there as the spec says: a veth, and for a bridge cable, paired with its host end. */
function cabled(state: NodeState, ifname: string, wanted: Interface): boolean {
  const link = state.links.find((l) => l.ifname === ifname);
  if (link?.linkinfo?.info_kind !== "veth") return false;
  if (!wanted.bridge) return true;
  const hostEnd = state.hostLink(wanted.bridge.hostEnd);
  return hostEnd !== undefined && link.link_index === hostEnd.ifindex && hostEnd.link_index === link.ifindex;
}

/**
 * Every command that brings the namespace from `state` to `spec`, in order: interfaces that go, cables
 * that are missing, link settings, addresses, forwarding, routes (a gateway needs its address first).
 * `previous` is the spec of the last create or update: what is no longer wanted is removed. Pure.
 */
export function convergeSteps(spec: LabNodeSpec, state: NodeState, owner: string | undefined, previous?: LabNodeSpec): Argv[] {
  const ns = spec.name;
  const steps: Argv[] = [];
  const ours = (link: IpLinkJson) => link.linkinfo?.info_kind === "veth" && owner !== undefined && aliasOwner(link.ifalias, owner) === "ours";
  for (const link of state.links) {
    const wanted = spec.interfaces[link.ifname];
    if (link.ifname === "lo") continue;
    if (wanted ? !cabled(state, link.ifname, wanted) : ours(link) || previous?.interfaces?.[link.ifname]) steps.push(linkDeleteArgv(ns, link.ifname));
  }
  const tag = (ifname: string) => (owner === undefined ? [] : [setAliasArgv(ns, ifname, owner)]);
  const present = new Map(state.links.map((l) => [l.ifname, l]));
  const lo = present.get("lo");
  if (lo && !isUp(lo)) steps.push(linkSetArgv(ns, "lo", { up: true }));
  // IPv6 addresses go on once the interface is up: the kernel drops them from one that is down.
  const ipv6Added: Argv[] = [];
  for (const [ifname, wanted] of Object.entries(spec.interfaces)) {
    const link = cabled(state, ifname, wanted) ? present.get(ifname) : undefined;
    if (!link) steps.push(...makeCable(spec.name, ifname, wanted, state), ...tag(ifname));
    else if (owner !== undefined && aliasOwner(link.ifalias, owner) !== "ours") steps.push(...tag(ifname));
    if (wanted.bridge) {
      const hostEnd = link && state.hostLink(wanted.bridge.hostEnd);
      const hostChange: LinkChange = {};
      if (!hostEnd || hostEnd.mtu !== wanted.mtu) hostChange.mtu = wanted.mtu;
      if (!hostEnd || hostEnd.master !== wanted.bridge.name) hostChange.master = wanted.bridge.name;
      if (!hostEnd || isUp(hostEnd) !== wanted.up) hostChange.up = wanted.up;
      if (Object.keys(hostChange).length > 0) steps.push(linkSetArgv(undefined, wanted.bridge.hostEnd, hostChange));
    }
    const have = globalAddresses(link);
    const want = wanted.addresses.filter((a) => !suspended(spec, ifname, familyOf(a)));
    for (const address of have.filter((a) => !want.includes(a))) steps.push(addressArgv("del", { namespace: ns, device: ifname, address }));
    for (const address of want.filter((a) => !have.includes(a))) {
      const add = addressArgv("add", { namespace: ns, device: ifname, address });
      // A lab's addresses are allocated to be unique: duplicate address detection would only delay them.
      if (familyOf(address) === 6) ipv6Added.push([...add, "nodad"]);
      else steps.push(add);
    }
    const change: LinkChange = {};
    if (!link || link.mtu !== wanted.mtu) change.mtu = wanted.mtu;
    if (!link || isUp(link) !== wanted.up) change.up = wanted.up;
    if (Object.keys(change).length > 0) steps.push(linkSetArgv(ns, ifname, change));
  }
  steps.push(...ipv6Added);
  const wasNamespace = previous !== undefined && previous.interfaces === undefined;
  if (wasNamespace && owner !== undefined) steps.push(takeOverArgv(ns, owner));
  const writes = (["ipv4", "ipv6"] as const).filter((f) => spec.forwarding[f] !== state.forwarding[f]).map((f) => `${FORWARDING[f]}=${spec.forwarding[f] ? 1 : 0}`);
  if (writes.length > 0) steps.push(sysctlWritesArgv(writes, ns));
  const installed = new Map(state.routes.map((r) => [installedKey(r), r]));
  const wantedRoutes = new Set(spec.routes.map(wantedKey));
  for (const route of previous?.routes ?? []) {
    // By its identity alone: a gateway changed by hand since must not fail the step.
    const { destination, metric } = route;
    if (!wantedRoutes.has(wantedKey(route)) && installed.has(wantedKey(route))) steps.push(routeArgv("del", { destination, metric, family: familyOf(route.via), namespace: ns }));
  }
  for (const route of spec.routes.filter((r) => !routeSuspended(spec, r))) {
    const now = installed.get(wantedKey(route));
    // A cable made again in this step took the route through it along.
    const remade = !cabled(state, route.device, spec.interfaces[route.device] ?? ({} as Interface));
    if (!now || remade || now.via !== route.via || now.device !== route.device) steps.push(routeArgv("replace", { ...route, namespace: ns }));
  }
  return steps;
}

/** The commands that make an interface's cable (its end in the namespace named `ifname`). */
function makeCable(ns: string, ifname: string, wanted: Interface, state: NodeState): Argv[] {
  if (wanted.bridge) {
    // A host end whose namespace end is gone (moved away by hand) is a leftover of this cable.
    const stale = state.hostLink(wanted.bridge.hostEnd) ? [linkDeleteArgv(undefined, wanted.bridge.hostEnd)] : [];
    return [...stale, vethAddArgv({ name: ifname, namespace: ns, mtu: wanted.mtu, up: false, peer: { name: wanted.bridge.hostEnd, up: false } })];
  }
  const { park, role } = wanted.pair!;
  if (role === "make") {
    const stale = state.hostLink(park) ? [linkDeleteArgv(undefined, park)] : [];
    return [...stale, vethAddArgv({ name: ifname, namespace: ns, mtu: wanted.mtu, up: false, peer: { name: park, up: false } })];
  }
  // Taken in two commands: renaming as it moves is refused by some kernels when the name is taken in the host's namespace.
  if (state.links.some((l) => l.ifname === park)) return [inNamespace(ns, ["ip", "link", "set", "dev", park, "name", ifname])];
  if (!state.hostLink(park)) {
    throw new Error(
      `interface "${ifname}" of node namespace "${ns}": its cable is made by the node at the other end, and its end is not parked as "${park}" ` +
        "on the host: run `pulumi up` again once that node is in place (after a `pulumi refresh` if its cable was removed by hand)",
    );
  }
  return [["ip", "link", "set", "dev", park, "netns", ns], inNamespace(ns, ["ip", "link", "set", "dev", park, "name", ifname])];
}

/** The node as the host has it, in the spec's shape and order, so that an unchanged node compares equal. */
export function observe(spec: LabNodeSpec, state: NodeState): Props {
  const installed = new Map(state.routes.map((r) => [installedKey(r), r]));
  const interfaces: Record<string, Props> = {};
  for (const [ifname, wanted] of Object.entries(spec.interfaces)) {
    if (!cabled(state, ifname, wanted)) continue;
    const link = state.links.find((l) => l.ifname === ifname)!;
    const have = globalAddresses(link);
    const kept = wanted.addresses.filter((a) => have.includes(a) || suspended(spec, ifname, familyOf(a)));
    const bridge = wanted.bridge && { ...wanted.bridge, name: state.hostLink(wanted.bridge.hostEnd)?.master ?? "" };
    interfaces[ifname] = {
      ...wanted,
      ...(bridge ? { bridge } : {}),
      mtu: link.mtu,
      up: isUp(link),
      addresses: [...kept, ...have.filter((a) => !kept.includes(a))],
    };
  }
  const routes = spec.routes.flatMap((route) => {
    if (routeSuspended(spec, route)) return [route];
    const now = installed.get(wantedKey(route));
    return now ? [{ ...route, via: now.via, device: now.device }] : [];
  });
  return { interfaces, routes, forwarding: state.forwarding };
}

interface NetconfJson {
  family: string;
  interface: string;
  forwarding?: boolean;
}

export function parseForwarding(stdout: string): NodeState["forwarding"] {
  const entries = JSON.parse(stdout.trim() || "[]") as NetconfJson[];
  const all = (family: string) => entries.find((e) => e.family === family && e.interface === "all")?.forwarding === true;
  return { ipv4: all("inet"), ipv6: all("inet6") };
}

const inFamily = (routes: RouteEntry[], family: 4 | 6): InstalledRoute[] => routes.map((r) => ({ ...r, family }));
const routesArgv = (family: 4 | 6): Argv => ["ip", `-${family}`, "-j", "route", "show", "table", "main"];
const NETCONF_ARGV: Argv = ["ip", "-j", "netconf", "show"];
const ADDR_ARGV: Argv = ["ip", "-j", "-d", "addr", "show"];

/** Host-namespace links a spec's cables use. */
const hostNames = (spec: LabNodeSpec) => Object.values(spec.interfaces).map((i) => i.bridge?.hostEnd ?? i.pair!.park);

/** The node now, one command per part, side by side; undefined when its namespace is gone. */
async function readLive(host: Host, spec: LabNodeSpec): Promise<NodeState | undefined> {
  const read = (argv: Argv) => runUnlessGone(host, argv, { readOnly: true });
  const ns = spec.name;
  const [links, v4, v6, netconf, ...hostLinks] = await Promise.all([
    read(inNamespace(ns, ADDR_ARGV)),
    read(inNamespace(ns, routesArgv(4))),
    read(inNamespace(ns, routesArgv(6))),
    read(inNamespace(ns, NETCONF_ARGV)),
    ...hostNames(spec).map((name) => read(["ip", "-j", "-d", "link", "show", "dev", name])),
  ]);
  if (!links || !v4 || !v6 || !netconf) return undefined;
  const host_ = hostLinks.flatMap((r) => (r ? (JSON.parse(r.stdout.trim() || "[]") as IpLinkJson[]) : []));
  return {
    links: JSON.parse(links.stdout.trim() || "[]") as IpLinkJson[],
    hostLink: (name) => host_.find((l) => l.ifname === name),
    routes: [...inFamily(parseRoutes(v4.stdout, 4), 4), ...inFamily(parseRoutes(v6.stdout, 6), 6)],
    forwarding: parseForwarding(netconf.stdout),
  };
}

/** The node from the listings of every namespace a refresh takes once for all its reads. */
async function readListed(host: Host, name: string): Promise<NodeState | undefined> {
  const [links, v4, v6, netconf] = await Promise.all([
    listLinks(host),
    listEveryNamespace(host, routesArgv(4), (text) => parseRoutes(text, 4)),
    listEveryNamespace(host, routesArgv(6), (text) => parseRoutes(text, 6)),
    listEveryNamespace(host, NETCONF_ARGV, parseForwarding),
  ]);
  const own = links.get(name);
  if (!own) return undefined;
  const hostLinks = links.get("") ?? [];
  return {
    links: own,
    hostLink: (linkName) => hostLinks.find((l) => l.ifname === linkName),
    routes: [...inFamily(v4.get(name) ?? [], 4), ...inFamily(v6.get(name) ?? [], 6)],
    forwarding: netconf.get(name) ?? { ipv4: false, ipv6: false },
  };
}

/** The owner this node's interfaces carry (owner.ts); its namespace's holder token is its hash. */
const REPLACE_ON = ["name"];
const nodeOwner = (props: Props): string | undefined => objectOwner(REPLACE_ON, props);

async function converge(host: Host, spec: LabNodeSpec, owner: string | undefined, previous?: LabNodeSpec): Promise<Props> {
  const before = await readLive(host, spec);
  if (!before) throw new Error(`${host.label}: network namespace "${spec.name}" is gone; run \`pulumi refresh\` to make the node again`);
  const steps = convergeSteps(spec, before, owner, previous);
  if (steps.length > 0) await host.run(inOneStep(...steps));
  const after = await readLive(host, spec);
  if (!after) throw new Error(`${host.label}: network namespace "${spec.name}" went away while it was being set up`);
  return observe(spec, after);
}

export const labNodeKind = defineKind({
  name: "LabNode",
  description:
    "One node of a Lab as one resource: its network namespace, the interfaces of its cables (to a bridge on the host, or a veth pair " +
    "to another node on the host), their addresses, its routes and forwarding, made in one remote step and read back in one. " +
    "The Lab component makes these; a program may too.",
  shape: {
    name: namespaceName.describe("Namespace name."),
    interfaces: z.record(interfaceName, labInterface).default({}).describe("Interface name → its cable, settings and addresses."),
    routes: z.array(labRoute).default([]).describe("Static routes in the main table."),
    forwarding: z
      .object({ ipv4: z.boolean().default(false), ipv6: z.boolean().default(false) })
      .default({ ipv4: false, ipv6: false })
      .describe("IP forwarding in the namespace, per family (a router has it)."),
  },
  refine(spec, ctx) {
    for (const [i, route] of spec.routes.entries()) {
      if (!spec.interfaces[route.device]) ctx.addIssue({ code: "custom", path: ["routes", i, "device"], message: `"${route.device}" is none of the node's interfaces` });
    }
    const parks = Object.values(spec.interfaces).map((i) => i.bridge?.hostEnd ?? i.pair?.park);
    const twice = parks.find((p, i) => parks.indexOf(p) !== i);
    if (twice) ctx.addIssue({ code: "custom", path: ["interfaces"], message: `two interfaces use the host's "${twice}"` });
  },
  replaceOn: REPLACE_ON,
  collides: neverCollides,
  outputs: { holder: z.string().describe("This resource's token in the namespace's holder record (under /run/pulumi-netns).") },
  adoptable: false,
  async create(host, spec, _adopt, owner) {
    const holder = ownerToken(owner);
    const { made } = await makeNamespace(host, spec.name, holder, owner, false);
    try {
      return { id: spec.name, observed: { ...(await converge(host, spec, owner)), holder } };
    } catch (err) {
      // A namespace this create made goes again, with whatever it holds.
      if (made) await releaseNamespace(host, spec.name, holder, true).catch(() => undefined);
      throw err;
    }
  },
  async read(host, id, olds) {
    const state = await readListed(host, id);
    return state && observe(olds as unknown as LabNodeSpec, state);
  },
  update: (host, _id, olds, news) => converge(host, news, nodeOwner(olds), olds as unknown as LabNodeSpec),
  async delete(host, id, olds) {
    // Its cables first: a namespace's own interfaces go with it only once the kernel has freed it, which
    // may be later than `ip netns del` returns, and a host end still there would clash with the next one.
    const interfaces = Object.keys((olds.interfaces ?? {}) as Props);
    await Promise.all(interfaces.map((ifname) => runUnlessGone(host, linkDeleteArgv(id, ifname))));
    await releaseNamespace(host, id, olds.holder as string | undefined, true);
    // Records a node took over (TAKE_OVER) go with its namespace.
    if ((await namespaceIdentity(host, id)) === undefined) await host.run(["rm", "-rf", ...recordFolders(id)]);
  },
  // Its namespace's holder record is a namespace's (the Namespace kind lists it for `sweep`), and every
  // other object it makes goes with the namespace.
  tagged: async () => [],
});

