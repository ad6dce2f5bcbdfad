/**
 * A LabNode's whole life on a real kernel: two nodes on a bridge and joined by a veth pair that the first
 * makes and the second takes; drift of each part (address, extra address, route, forwarding, a host end
 * off its bridge, an interface or the pair deleted by hand) read back as drift and repaired in place;
 * in-place edits (address, MTU, a pulled cable, routes, forwarding); delete leaving the host as it was.
 */
import { hostSnapshot } from "../harness/hostSnapshot";
import type { TestHost } from "../harness/throwawayHosts";
import { closeAllHosts } from "../../provider";
import { connection as connectionSchema } from "../../provider/connection";
import { hostFor } from "../../provider/ssh/pool";
import { findOrphans, removeOrphans, stateResource } from "../../provider/sweep";
import type { Props } from "../../provider/kind";
import { engine, recorder } from "../harness/engine";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

const bridge = engine("Bridge");
const labNode = engine("LabNode");
const made = recorder();
afterEach(() => made.destroy());

/**
 * A change by hand: the provider's next read must not get a listing from before it (a refresh's reads
 * share one), so its connections start afresh.
 */
const byHand = (argv: string[]) => {
  const out = host.sh(argv);
  closeAllHosts();
  return out;
};
const inNs = (ns: string, ...argv: string[]) => byHand(["ip", "-n", ns, ...argv]);
const ping = (ns: string, address: string) =>
  host.sh(["ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "2", address], { allowFailure: true });

function nodeA(over: Props = {}): Props {
  return {
    connection,
    name: "lna",
    interfaces: {
      eth0: { bridge: { name: "lnbr", hostEnd: "lnh-a0" }, addresses: ["10.88.0.1/24", "fd00:88::1/64"] },
      eth1: { pair: { park: "lnp-ab", role: "make", namespace: "lnb", interface: "eth1" }, addresses: ["10.89.0.1/30"] },
    },
    routes: [{ destination: "10.90.0.0/16", via: "10.89.0.2", device: "eth1" }],
    forwarding: { ipv4: true },
    ...over,
  };
}

function nodeB(over: Props = {}): Props {
  return {
    connection,
    name: "lnb",
    interfaces: {
      eth0: { bridge: { name: "lnbr", hostEnd: "lnh-b0" }, addresses: ["10.88.0.2/24", "fd00:88::2/64"] },
      eth1: { pair: { park: "lnp-ab", role: "take", namespace: "lna", interface: "eth1" }, addresses: ["10.89.0.2/30"] },
    },
    routes: [{ destination: "default", via: "10.88.0.1", device: "eth0" }],
    ...over,
  };
}

/** Reads the node; when the host differs from state, diff must say so (in place), and update repairs it. */
async function repaired(id: string, outs: Props, news: Props, drifted: (props: Props) => void): Promise<Props> {
  const read = await labNode.read(id, outs);
  expect(read.id).toBe(id);
  drifted(read.props);
  expect(await labNode.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
  const after = await labNode.update(id, read.props, news);
  expect((await labNode.read(id, after)).props).toEqual(after);
  return after;
}

test("a LabNode's life: made, read, drift of each part repaired, edited in place, deleted without a trace", async () => {
  const before = hostSnapshot(host);
  await made.create(bridge, { connection, name: "lnbr" });
  const a = await made.create(labNode, nodeA());
  // Made first: the pair's other end waits in the host's namespace.
  expect(host.sh(["ip", "-j", "link", "show", "dev", "lnp-ab"])).toContain('"lnp-ab"');
  const b = await made.create(labNode, nodeB());
  expect(host.sh(["ip", "-j", "link", "show"])).not.toContain('"lnp-ab"');
  expect(ping("lnb", "10.88.0.1")).toContain(" 1 received");
  expect(ping("lnb", "10.89.0.1")).toContain(" 1 received");
  expect(ping("lnb", "fd00:88::1")).toContain(" 1 received");
  expect(inNs("lna", "route", "show", "10.90.0.0/16")).toContain("via 10.89.0.2 dev eth1");
  expect(host.sh(["ip", "netns", "exec", "lna", "sysctl", "-n", "net.ipv4.ip_forward"]).trim()).toBe("1");
  expect(await labNode.read(a.id, a.outs)).toEqual({ id: a.id, props: a.outs });
  expect(await labNode.read(b.id, b.outs)).toEqual({ id: b.id, props: b.outs });
  expect(await labNode.diff(a.id, a.outs, nodeA())).toMatchObject({ changes: false });

  // Drift, one part at a time.
  inNs("lna", "addr", "del", "10.88.0.1/24", "dev", "eth0");
  let outsA = await repaired(a.id, a.outs, nodeA(), (p) => expect((p.interfaces as any).eth0.addresses).toEqual(["fd00:88::1/64"]));
  inNs("lna", "addr", "add", "10.88.0.9/24", "dev", "eth0");
  outsA = await repaired(a.id, outsA, nodeA(), (p) => expect((p.interfaces as any).eth0.addresses).toContain("10.88.0.9/24"));
  expect(inNs("lna", "addr", "show", "dev", "eth0")).not.toContain("10.88.0.9");
  inNs("lna", "route", "del", "10.90.0.0/16");
  outsA = await repaired(a.id, outsA, nodeA(), (p) => expect(p.routes).toEqual([]));
  byHand(["ip", "netns", "exec", "lna", "sysctl", "-q", "-w", "net.ipv4.ip_forward=0"]);
  outsA = await repaired(a.id, outsA, nodeA(), (p) => expect(p.forwarding).toEqual({ ipv4: false, ipv6: false }));
  byHand(["ip", "link", "set", "dev", "lnh-a0", "nomaster"]);
  outsA = await repaired(a.id, outsA, nodeA(), (p) => expect((p.interfaces as any).eth0.bridge).toEqual({ name: "", hostEnd: "lnh-a0" }));
  expect(ping("lnb", "10.88.0.1")).toContain(" 1 received");
  inNs("lna", "link", "del", "eth0");
  outsA = await repaired(a.id, outsA, nodeA(), (p) => expect(Object.keys(p.interfaces as Props)).toEqual(["eth1"]));
  // The interface made again has a new MAC address, which lnb learns once its neighbour entry goes stale.
  host.sh(["ip", "-n", "lnb", "neigh", "flush", "dev", "eth0"]);
  expect(ping("lnb", "10.88.0.1")).toContain(" 1 received");

  // The pair deleted by hand: both nodes read it as gone; the maker makes it again, then the taker takes it.
  inNs("lnb", "link", "del", "eth1");
  const readA = (await labNode.read(a.id, outsA)).props;
  const readB = (await labNode.read(b.id, b.outs)).props;
  expect(Object.keys(readA.interfaces as Props)).toEqual(["eth0"]);
  expect(Object.keys(readB.interfaces as Props)).toEqual(["eth0"]);
  await expect(labNode.update(b.id, readB, nodeB())).rejects.toThrow(/not parked as "lnp-ab"/);
  outsA = await labNode.update(a.id, readA, nodeA());
  let outsB = await labNode.update(b.id, readB, nodeB());
  expect(ping("lnb", "10.89.0.1")).toContain(" 1 received");
  expect(inNs("lna", "route", "show", "10.90.0.0/16")).toContain("via 10.89.0.2 dev eth1");

  // Edits in place: another address and MTU, the pair pulled (IPv6 kept in state only), a route added, forwarding off.
  const editedA = nodeA({
    interfaces: {
      eth0: { bridge: { name: "lnbr", hostEnd: "lnh-a0" }, mtu: 1400, addresses: ["10.88.0.3/24", "fd00:88::1/64"] },
      eth1: {
        pair: { park: "lnp-ab", role: "make", namespace: "lnb", interface: "eth1" },
        up: false,
        addresses: ["10.89.0.1/30", "fd00:89::1/64"],
      },
    },
    routes: [
      { destination: "10.90.0.0/16", via: "10.89.0.2", device: "eth1" },
      { destination: "10.91.0.0/16", via: "10.88.0.2", device: "eth0", metric: 20 },
    ],
    forwarding: { ipv4: false },
  });
  expect(await labNode.diff(a.id, outsA, editedA)).toMatchObject({ changes: true, replaces: [] });
  outsA = await labNode.update(a.id, outsA, editedA);
  expect(inNs("lna", "link", "show", "dev", "eth0")).toContain("mtu 1400");
  expect(host.sh(["ip", "link", "show", "dev", "lnh-a0"])).toContain("mtu 1400");
  expect(inNs("lna", "addr", "show", "dev", "eth0")).toContain("10.88.0.3/24");
  expect(inNs("lna", "addr", "show", "dev", "eth0")).not.toContain("10.88.0.1/24");
  expect(inNs("lna", "link", "show", "dev", "eth1")).not.toMatch(/[<,]UP[,>]/);
  expect(inNs("lna", "route", "show", "10.91.0.0/16")).toContain("via 10.88.0.2 dev eth0 metric 20");
  expect(host.sh(["ip", "netns", "exec", "lna", "sysctl", "-n", "net.ipv4.ip_forward"]).trim()).toBe("0");
  expect(await labNode.read(a.id, outsA)).toEqual({ id: a.id, props: outsA });
  expect(await labNode.diff(a.id, outsA, editedA)).toMatchObject({ changes: false });
  // Up again: the suspended IPv6 address and the route through the pair come back.
  await labNode.update(
    a.id,
    outsA,
    nodeA({
      interfaces: {
        ...(editedA.interfaces as Props),
        eth1: { pair: { park: "lnp-ab", role: "make", namespace: "lnb", interface: "eth1" }, addresses: ["10.89.0.1/30", "fd00:89::1/64"] },
      },
    }),
  );
  expect(inNs("lna", "addr", "show", "dev", "eth1")).toContain("fd00:89::1/64");
  expect(inNs("lna", "route", "show", "10.90.0.0/16")).toContain("via 10.89.0.2 dev eth1");
  expect(ping("lnb", "10.89.0.1")).toContain(" 1 received");
  // An interface the node no longer has goes (the pair with it); a route through it with it.
  outsB = await labNode.update(b.id, outsB, nodeB({ interfaces: { eth0: (nodeB().interfaces as Props).eth0 } }));
  expect(inNs("lnb", "link", "show")).not.toContain("eth1");
  expect(Object.keys(outsB.interfaces as Props)).toEqual(["eth0"]);

  await made.destroy();
  expect(hostSnapshot(host)).toEqual(before);
});

test("bad input names the property and nothing runs on the host", async () => {
  const before = hostSnapshot(host);
  const checked = await labNode.check(nodeA({ routes: [{ destination: "10.90.0.0/16", via: "10.89.0.2", device: "eth9" }] }));
  expect(checked.failures).toEqual([expect.objectContaining({ property: "routes.0.device" })]);
  const both = await labNode.check(
    nodeA({
      interfaces: {
        eth0: { bridge: { name: "lnbr", hostEnd: "x" }, pair: { park: "y", role: "make", namespace: "lnb", interface: "eth1" } },
      },
      routes: [],
    }),
  );
  expect(both.failures?.[0].reason).toMatch(/exactly one of bridge and pair/);
  expect(both.failures?.[0].property).toMatch(/^interfaces\.eth0/);
  expect(hostSnapshot(host)).toEqual(before);
});

test("a Lab's Namespace taken over by its LabNode: the old cable, address, route and forwarding resources' deletes leave what the node took", async () => {
  const before = hostSnapshot(host);
  const namespace = engine("Namespace");
  const veth = engine("Veth");
  const address = engine("Address");
  const route = engine("Route");
  const sysctl = engine("Sysctl");
  const owner = (letter: string) => `${letter.repeat(16)}@lab/stack`;
  await made.create(bridge, { connection, name: "lnbr" });
  // As the release before LabNode made a node: each part its own resource, each with its owner.
  const ns = await namespace.create({ connection, name: "lna", owner: owner("a") });
  const old = [
    {
      kind: veth,
      made: await veth.create({ connection, name: "eth0", namespace: "lna", peer: { name: "lnh-a0", master: "lnbr" }, owner: owner("b") }),
    },
    {
      kind: address,
      made: await address.create({ connection, namespace: "lna", device: "eth0", address: "10.88.0.1/24", owner: owner("c") }),
    },
    {
      kind: route,
      made: await route.create({
        connection,
        namespace: "lna",
        destination: "10.90.0.0/16",
        via: "10.88.0.2",
        device: "eth0",
        owner: owner("d"),
      }),
    },
    {
      kind: sysctl,
      made: await sysctl.create({ connection, namespace: "lna", key: "net.ipv4.ip_forward", value: "1", owner: owner("e") }),
    },
  ];
  const ifindex = () => JSON.parse(inNs("lna", "-j", "link", "show", "dev", "eth0"))[0].ifindex;
  const cable = ifindex();
  const node = {
    connection,
    name: "lna",
    owner: owner("a"),
    interfaces: { eth0: { bridge: { name: "lnbr", hostEnd: "lnh-a0" }, addresses: ["10.88.0.1/24"] } },
    routes: [{ destination: "10.90.0.0/16", via: "10.88.0.2", device: "eth0" }],
    forwarding: { ipv4: true },
  };
  expect(await labNode.diff(ns.id, ns.outs, node)).toMatchObject({ changes: true, replaces: [] });
  const outs = await labNode.update(ns.id, ns.outs, node);
  // The engine deletes the old resources after the update, with their own (this release's) code.
  for (const { kind, made: m } of old.reverse()) await kind.delete(m.id, m.outs);
  closeAllHosts();
  expect(ifindex()).toBe(cable);
  expect(inNs("lna", "addr", "show", "dev", "eth0")).toContain("10.88.0.1/24");
  expect(inNs("lna", "route", "show", "10.90.0.0/16")).toContain("via 10.88.0.2 dev eth0");
  expect(host.sh(["ip", "netns", "exec", "lna", "sysctl", "-n", "net.ipv4.ip_forward"]).trim()).toBe("1");
  expect(await labNode.read(ns.id, outs)).toEqual({ id: ns.id, props: outs });
  await labNode.delete(ns.id, outs);
  await made.destroy();
  expect(hostSnapshot(host)).toEqual(before);
  expect(host.sh(["sh", "-c", "find /run/pulumi-netns -type f ! -name lock; true"])).toBe("");
});

test("sweep knows a LabNode in state by the owner its namespace and interfaces carry; forgotten, they are found and removed", async () => {
  const before = hostSnapshot(host);
  const owned = { owner: "abcdefabcdefabcd@lab/stack" };
  await made.create(bridge, { connection, name: "lnbr" });
  const a = await labNode.create(nodeA({ ...owned, routes: [] }));
  const target = hostFor(connectionSchema.parse(connection));
  expect(await findOrphans(target, "lab/stack", [stateResource("LabNode", a.id, a.outs)])).toEqual([]);
  // State forgot it: its namespace (a Namespace's record) and its tagged interfaces are listed, and go.
  const orphans = await findOrphans(target, "lab/stack", []);
  expect(orphans.map((o) => `${o.kind.name} ${o.id}`).sort()).toEqual(["Namespace lna", "Veth lna/eth0", "Veth lna/eth1"]);
  expect((await removeOrphans(target, orphans)).filter((r) => r.error)).toEqual([]);
  await made.destroy();
  closeAllHosts();
  expect(hostSnapshot(host)).toEqual(before);
});
