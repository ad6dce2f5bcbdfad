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
import { IpLinkJson, isUp, linkChanges, linkSetArgv, linkState, listLinks, runUnlessGone } from "../iproute";
import { defineKind, neverCollides, Props } from "../kind";
import { aliasOwner, objectOwner, ownerTag, ownerToken, setAliasArgv } from "../owner";
import { addressArgv, recordPath as addressRecordPath } from "./address";
import { makeNamespace, releaseNamespace } from "./namespace";
import { parseRoutes, recordPath as routeRecordPath, RouteEntry, routeArgv } from "./route";
import { recordPath as sysctlRecordPath, sysctlGroup, sysctlWritesArgv } from "./sysctl";
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
        namespace: namespaceName.describe("The other node's namespace."),
        interface: interfaceName.describe("The other end's name there."),
      })
      .optional()
      .describe("A cable to another node on the same host: one veth pair between the two namespaces."),
    mtu: mtu.default(1500).describe("MTU of this end (and of the host end of a bridge cable)."),
    up: z.boolean().default(true).describe("Administrative state; a node's end of a pulled cable is down."),
    addresses: z
      .array(cidr)
      .default([])
      .describe("Addresses with prefix length. IPv6 ones are kept in state only while the interface is down (the kernel drops them)."),
  })
  .refine((i) => (i.bridge === undefined) !== (i.pair === undefined), { message: "give exactly one of bridge and pair" });

const labRoute = z.object({
  destination: z.union([z.literal("default"), networkCidr]).describe('Destination network, or "default".'),
  via: ipAddress.describe("Gateway address, on the subnet of `device`."),
  device: interfaceName.describe("One of this node's interfaces."),
  metric: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .optional()
    .describe("Route metric (the kernel's default when unset)."),
});

export type LabNodeInterface = z.input<typeof labInterface>;
export type LabNodeRoute = z.input<typeof labRoute>;
type Interface = z.infer<typeof labInterface>;
type Route = z.infer<typeof labRoute>;

/** A node's spec, as checked (defaults applied). */
interface LabNodeSpec {
  name: string;
  interfaces: Record<string, Interface>;
  routes: Route[];
  forwarding: { ipv4: boolean; ipv6: boolean };
}

/** A node's spec as a program gives it (the Lab's nodeSpec.ts). */
export interface LabNodeInput {
  name: string;
  interfaces: Record<string, LabNodeInterface>;
  routes: LabNodeRoute[];
  forwarding: { ipv4: boolean; ipv6: boolean };
}

/** What is on the host for one node, however it was read (one command per part, or a refresh's listings). */
export interface NodeState {
  /** The namespace's links with their addresses. */
  links: IpLinkJson[];
  /** A link of another namespace: the host's own (undefined; a bridge cable's host end, a parked end) or the other node's of a pair. */
  linkIn(namespace: string | undefined, name: string): IpLinkJson | undefined;
  routes: InstalledRoute[];
  forwarding: { ipv4: boolean; ipv6: boolean };
}

export type InstalledRoute = RouteEntry & { family: 4 | 6 };

const familyOf = (address: string) => (isIP(address.split("/")[0]) === 6 ? 6 : 4);
const FORWARDING = { ipv4: "net.ipv4.ip_forward", ipv6: "net.ipv6.conf.all.forwarding" } as const;

/**
 * The first update of a node that was a Lab's Namespace (a stack made before LabNode): the owner records of
 * its addresses and routes now name this node, and the records of its forwarding go, so that the deletes
 * of the Lab's old Address, Route and Sysctl resources, at the end of that same update, leave what this
 * node took over (see takenOver in owner.ts). Its interfaces get its owner as their alias. Records to
 * rewrite come first, then "--", then records to remove.
 */
const TAKE_OVER = `tag=$1
shift
while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
  if [ -f "$1" ]; then printf '%s\\n' "$tag" >"$1" || exit; fi
  shift
done
shift
rm -f "$@"`;

/** The records a node takes over from a Lab's older resources (TAKE_OVER): its addresses' and routes', and its forwarding's. */
function recordsTaken(spec: LabNodeSpec): { owned: string[]; forwarding: string[] } {
  const namespace = spec.name;
  const addresses = Object.entries(spec.interfaces ?? {}).flatMap(([device, i]) =>
    i.addresses.map((address) => addressRecordPath({ namespace, device, address })),
  );
  const routes = (spec.routes ?? []).map((r) => routeRecordPath({ ...r, namespace }));
  return {
    owned: [...addresses, ...routes],
    forwarding: Object.values(FORWARDING).map((key) => sysctlRecordPath(sysctlGroup(key), namespace)),
  };
}

function takeOverArgv(spec: LabNodeSpec, owner: string): Argv {
  const { owned, forwarding } = recordsTaken(spec);
  return ["sh", "-c", TAKE_OVER, "sh", ownerTag(owner), ...owned, "--", ...forwarding];
}

/**
 * Addresses the node manages: its interfaces' static global ones. Link-local IPv6 ones come with the
 * interface, and dynamic ones (SLAAC, from a router advertisement of a service in the lab) from elsewhere.
 */
const globalAddresses = (link: IpLinkJson | undefined) =>
  (link?.addr_info ?? [])
    .filter((a) => (a.scope ?? "global") === "global" && !a.dynamic)
    .map((a) => canonicalCidr(`${a.local}/${a.prefixlen}`));

/** The kernel's identity of a route: family, destination and metric (IPv6 stores none as 1024). */
const IPV6_DEFAULT_METRIC = 1024;
const routeKey = (family: 4 | 6, r: { destination: string; metric?: number }) =>
  `${family} ${r.destination} ${family === 6 ? r.metric || IPV6_DEFAULT_METRIC : (r.metric ?? 0)}`;
const installedKey = (r: InstalledRoute) => routeKey(r.family, r);
const wantedKey = (r: Route) => routeKey(familyOf(r.via), r);

/** IPv6 addresses and routes through an interface that is down are in state only: the kernel drops them. */
const suspended = (spec: LabNodeSpec, device: string, family: number) => spec.interfaces[device]?.up === false && family === 6;
const routeSuspended = (spec: LabNodeSpec, route: Route) => spec.interfaces[route.device]?.up === false;

/**
 * Deletes a link, done also when it is gone already: the two nodes of a pair update side by side, and
 * either may delete it first (deleting one end deletes both).
 */
const LINK_GONE = 'ip "$@" link del dev "$0" 2>/dev/null || ! ip "$@" link show dev "$0" >/dev/null 2>&1';
const deleteLinkArgv = (namespace: string | undefined, name: string): Argv => [
  "sh",
  "-c",
  LINK_GONE,
  name,
  ...(namespace ? ["-n", namespace] : []),
];

/** Two links are the two ends of one veth pair in two namespaces: each names the other's index. */
const paired = (a: IpLinkJson, b: IpLinkJson | undefined) => b !== undefined && a.link_index === b.ifindex && b.link_index === a.ifindex;

/**
 * The interface's cable is there as the spec says: a veth paired with its host end on the bridge, or with
 * the other node's end of the pair, or (before the other node takes it) with the end parked on the host.
 */
function cabled(state: NodeState, ifname: string, wanted: Interface): boolean {
  const link = state.links.find((l) => l.ifname === ifname);
  if (link?.linkinfo?.info_kind !== "veth") return false;
  if (wanted.bridge) return paired(link, state.linkIn(undefined, wanted.bridge.hostEnd));
  const { park, namespace, interface: other } = wanted.pair!;
  return paired(link, state.linkIn(namespace, other)) || paired(link, state.linkIn(undefined, park));
}

/**
 * Every command that brings the namespace from `state` to `spec`, in order: interfaces that go, cables
 * that are missing, link settings, addresses, forwarding, routes (a gateway needs its address first).
 * `previous` is the spec of the last create or update: what is no longer wanted is removed. Pure.
 */
export function convergeSteps(spec: LabNodeSpec, state: NodeState, owner: string | undefined, previous?: LabNodeSpec): Argv[] {
  const ns = spec.name;
  const steps: Argv[] = [];
  const ours = (link: IpLinkJson) =>
    link.linkinfo?.info_kind === "veth" && owner !== undefined && aliasOwner(link.ifalias, owner) === "ours";
  for (const link of state.links) {
    const wanted = spec.interfaces[link.ifname];
    if (link.ifname === "lo") continue;
    if (wanted ? !cabled(state, link.ifname, wanted) : ours(link) || previous?.interfaces?.[link.ifname])
      steps.push(deleteLinkArgv(ns, link.ifname));
  }
  const tag = (ifname: string) => (owner === undefined ? [] : [setAliasArgv(ns, ifname, owner)]);
  const present = new Map(state.links.map((l) => [l.ifname, l]));
  const lo = present.get("lo");
  if (lo && !isUp(lo)) steps.push(linkSetArgv(ns, "lo", { up: true }));
  // IPv6 addresses go on once the interface is up: the kernel drops them from one that is down.
  const ipv6Added: Argv[] = [];
  /** Interfaces whose routes go in this step: made again, or the last IPv4 address deleted takes them along. */
  const routesGone = new Set<string>();
  for (const [ifname, wanted] of Object.entries(spec.interfaces)) {
    const link = cabled(state, ifname, wanted) ? present.get(ifname) : undefined;
    if (!link) routesGone.add(ifname);
    if (!link) steps.push(...makeCable(spec.name, ifname, wanted, state), ...tag(ifname));
    else if (owner !== undefined && aliasOwner(link.ifalias, owner) !== "ours") steps.push(...tag(ifname));
    if (wanted.bridge) {
      const hostEnd = link && state.linkIn(undefined, wanted.bridge.hostEnd);
      const hostChange = linkChanges(hostEnd && linkState(hostEnd), { mtu: wanted.mtu, master: wanted.bridge.name, up: wanted.up });
      if (Object.keys(hostChange).length > 0) steps.push(linkSetArgv(undefined, wanted.bridge.hostEnd, hostChange));
    }
    const have = globalAddresses(link);
    const want = wanted.addresses.filter((a) => !suspended(spec, ifname, familyOf(a)));
    for (const address of have.filter((a) => !want.includes(a))) {
      steps.push(addressArgv("del", { namespace: ns, device: ifname, address }));
      if (familyOf(address) === 4) routesGone.add(ifname);
    }
    for (const address of want.filter((a) => !have.includes(a))) {
      const add = addressArgv("add", { namespace: ns, device: ifname, address });
      // A lab's addresses are allocated to be unique: duplicate address detection would only delay them.
      if (familyOf(address) === 6) ipv6Added.push([...add, "nodad"]);
      else steps.push(add);
    }
    const change = linkChanges(link && linkState(link), { mtu: wanted.mtu, up: wanted.up });
    if (Object.keys(change).length > 0) steps.push(linkSetArgv(ns, ifname, change));
  }
  steps.push(...ipv6Added);
  const wasNamespace = previous !== undefined && previous.interfaces === undefined;
  if (wasNamespace && owner !== undefined) steps.push(takeOverArgv(spec, owner));
  const writes = (["ipv4", "ipv6"] as const)
    .filter((f) => spec.forwarding[f] !== state.forwarding[f])
    .map((f) => `${FORWARDING[f]}=${spec.forwarding[f] ? 1 : 0}`);
  if (writes.length > 0) steps.push(sysctlWritesArgv(writes, ns));
  const installed = new Map(state.routes.map((r) => [installedKey(r), r]));
  const wantedRoutes = new Set(spec.routes.map(wantedKey));
  for (const route of previous?.routes ?? []) {
    // By its identity alone (a gateway changed by hand since must not fail the step), with its metric as the
    // kernel has it: without one, IPv6 deletes the route of the lowest metric to that destination.
    const family = familyOf(route.via);
    const metric = family === 6 ? route.metric || IPV6_DEFAULT_METRIC : (route.metric ?? 0);
    if (!wantedRoutes.has(wantedKey(route)) && installed.has(wantedKey(route)))
      steps.push(routeArgv("del", { destination: route.destination, metric, family, namespace: ns }));
  }
  for (const route of spec.routes.filter((r) => !routeSuspended(spec, r))) {
    const now = installed.get(wantedKey(route));
    if (!now || routesGone.has(route.device) || now.via !== route.via || now.device !== route.device)
      steps.push(routeArgv("replace", { ...route, namespace: ns }));
  }
  return steps;
}

/** The commands that make an interface's cable (its end in the namespace named `ifname`). */
function makeCable(ns: string, ifname: string, wanted: Interface, state: NodeState): Argv[] {
  if (wanted.bridge || wanted.pair!.role === "make") {
    // The other end starts on the host: a host end on the bridge, or a pair's end parked for the other node.
    // One there already is a leftover of this cable, whose end here is gone.
    const hostEnd = wanted.bridge?.hostEnd ?? wanted.pair!.park;
    const stale = state.linkIn(undefined, hostEnd) ? [deleteLinkArgv(undefined, hostEnd)] : [];
    return [...stale, vethAddArgv({ name: ifname, namespace: ns, mtu: wanted.mtu, up: false, peer: { name: hostEnd, up: false } })];
  }
  const { park } = wanted.pair!;
  // Taken in two commands: renaming as it moves is refused by some kernels when the name is taken in the host's namespace.
  if (state.links.some((l) => l.ifname === park)) return [inNamespace(ns, ["ip", "link", "set", "dev", park, "name", ifname])];
  if (!state.linkIn(undefined, park)) {
    throw new Error(
      `interface "${ifname}" of node namespace "${ns}": its cable is made by the node at the other end, ` +
        `and its end is not parked as "${park}" on the host: ` +
        "run `pulumi up` again once that node is in place (after a `pulumi refresh` if its cable was removed by hand)",
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
    const bridge = wanted.bridge && { ...wanted.bridge, name: state.linkIn(undefined, wanted.bridge.hostEnd)?.master ?? "" };
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

/** Links of other namespaces a spec's cables use: [namespace (undefined: the host's own), name]. */
const linksElsewhere = (spec: LabNodeSpec): [string | undefined, string][] =>
  Object.values(spec.interfaces).flatMap((i): [string | undefined, string][] =>
    i.bridge
      ? [[undefined, i.bridge.hostEnd]]
      : [
          [undefined, i.pair!.park],
          [i.pair!.namespace, i.pair!.interface],
        ],
  );

/** The node now, one command per part, side by side; undefined when its namespace is gone. */
async function readLive(host: Host, spec: LabNodeSpec): Promise<NodeState | undefined> {
  const read = (argv: Argv) => runUnlessGone(host, argv, { readOnly: true });
  const ns = spec.name;
  const elsewhere = linksElsewhere(spec);
  const [links, v4, v6, netconf, ...others] = await Promise.all([
    read(inNamespace(ns, ADDR_ARGV)),
    read(inNamespace(ns, routesArgv(4))),
    read(inNamespace(ns, routesArgv(6))),
    read(inNamespace(ns, NETCONF_ARGV)),
    ...elsewhere.map(([namespace, name]) => read(inNamespace(namespace, ["ip", "-j", "-d", "link", "show", "dev", name]))),
  ]);
  if (!links || !v4 || !v6 || !netconf) return undefined;
  const found = others.map((r) => (r ? (JSON.parse(r.stdout.trim() || "[]") as IpLinkJson[])[0] : undefined));
  return {
    links: JSON.parse(links.stdout.trim() || "[]") as IpLinkJson[],
    linkIn: (namespace, name) => found[elsewhere.findIndex(([n, l]) => n === namespace && l === name)],
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
  return {
    links: own,
    linkIn: (namespace, linkName) => links.get(namespace ?? "")?.find((l) => l.ifname === linkName),
    routes: [...inFamily(v4.get(name) ?? [], 4), ...inFamily(v6.get(name) ?? [], 6)],
    forwarding: netconf.get(name) ?? { ipv4: false, ipv6: false },
  };
}

/**
 * A node's cables and routes as its namespace holds them, for `pulumi import` (read fills in MTUs, states,
 * addresses and forwarding): each veth whose other end is on a bridge on the host, each route with a
 * gateway (the kernel's own routes have none). Pure; an interface a LabNode cannot declare is an error.
 */
export function importedNodeSpec(name: string, state: NodeState, links: Map<string, IpLinkJson[]>): Props {
  const interfaces: Record<string, Props> = {};
  for (const link of state.links.filter((l) => l.ifname !== "lo")) {
    const which = `interface "${link.ifname}" of namespace "${name}"`;
    if (link.linkinfo?.info_kind !== "veth")
      throw new Error(`${which} is a ${link.linkinfo?.info_kind ?? "plain"} link: a LabNode's interfaces are veth cables`);
    const hostEnd = links.get("")?.find((candidate) => paired(link, candidate));
    if (!hostEnd) {
      const node = [...links].find(
        ([namespace, listed]) => namespace !== "" && namespace !== name && listed.some((l) => paired(link, l)),
      )?.[0];
      throw new Error(
        node
          ? `${which} is cabled to namespace "${node}": which node makes such a cable and where it parks it only a Lab knows; ` +
              "import its ends as a Namespace and a Veth instead"
          : `${which} has its other end in no namespace with a name`,
      );
    }
    if (!hostEnd.master) throw new Error(`${which} has its host end "${hostEnd.ifname}" on no bridge`);
    // Read adds its addresses.
    interfaces[link.ifname] = { bridge: { name: hostEnd.master, hostEnd: hostEnd.ifname }, addresses: [] };
  }
  const routes = state.routes.flatMap((r) =>
    r.via && r.device
      ? [
          {
            destination: r.destination,
            via: r.via,
            device: r.device,
            ...(r.metric !== (r.family === 6 ? IPV6_DEFAULT_METRIC : 0) ? { metric: r.metric } : {}),
          },
        ]
      : [],
  );
  return { name, interfaces, routes };
}

const REPLACE_ON = ["name"];
/** The owner this node's objects carry (owner.ts); its namespace's holder token is its hash. */
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
      if (!spec.interfaces[route.device])
        ctx.addIssue({ code: "custom", path: ["routes", i, "device"], message: `"${route.device}" is none of the node's interfaces` });
    }
    const onHost = linksElsewhere(spec).flatMap(([namespace, name]) => (namespace === undefined ? [name] : []));
    const twice = onHost.find((name, i) => onHost.indexOf(name) !== i);
    if (twice) ctx.addIssue({ code: "custom", path: ["interfaces"], message: `two interfaces use the host's "${twice}"` });
    // The kernel keeps one route per family, destination and metric; the gateway gives the family.
    const keys = spec.routes.map(wantedKey);
    spec.routes.forEach((route, i) => {
      if (route.destination !== "default" && familyOf(route.destination) !== familyOf(route.via)) {
        ctx.addIssue({ code: "custom", path: ["routes", i, "via"], message: "the gateway and the destination must be the same IP family" });
      } else if (keys.indexOf(keys[i]) !== i) {
        ctx.addIssue({
          code: "custom",
          path: ["routes", i],
          message: `a second route to ${route.destination} with that metric (give one another metric)`,
        });
      }
    });
  },
  replaceOn: REPLACE_ON,
  collides: neverCollides,
  outputs: { holder: z.string().describe("This resource's token in the namespace's holder record (under /run/pulumi-netns).") },
  adoptable: false,
  importing: {
    idForm: "NAME (the namespace)",
    identify: (id) => ({ name: id }),
    // Imported, its namespace holds no record on the host: destroy deletes it unless another program holds it.
    async discover(host, _id, identity) {
      const state = await readListed(host, identity.name as string);
      return state && importedNodeSpec(identity.name as string, state, await listLinks(host));
    },
  },
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
    // Its cables first, in one step with the records it may have taken over: a namespace's interfaces go
    // with it only once the kernel has freed it, which may be later than `ip netns del` returns, and a
    // host end still there would clash with the next one.
    const spec = olds as unknown as LabNodeSpec;
    const cables = Object.keys(spec.interfaces ?? {}).map((ifname) => deleteLinkArgv(id, ifname));
    await host.run(inOneStep(...cables, ["rm", "-f", ...recordsTaken(spec).owned]));
    await releaseNamespace(host, id, olds.holder as string | undefined, true);
  },
  // Its namespace's holder record is a namespace's (the Namespace kind lists it for `sweep`), and every
  // other object it makes goes with the namespace.
  tagged: async () => [],
});
