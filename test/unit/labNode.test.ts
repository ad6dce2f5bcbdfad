/** LabNode's pure parts: the commands that bring a namespace to its spec, as exact argv arrays, and the read-back. */
import type { IpLinkJson } from "../../provider/iproute";
import { convergeSteps, NodeState, observe, parseForwarding } from "../../provider/kinds/labNode";

const OWNER = "0123456789abcdef@proj/stack";
/** A link's delete in n1, done also when the other node of its pair deleted it first. */
const deleted = (ifname: string) => ["sh", "-c", expect.stringContaining("link del"), ifname, "-n", "n1"];
const TAG = `pulumi-netns:${OWNER}`;

const spec = {
  name: "n1",
  interfaces: {
    eth0: { bridge: { name: "br0", hostEnd: "h0" }, mtu: 1500, up: true, addresses: ["10.0.0.2/24", "fd00::2/64"] },
    eth1: {
      pair: { park: "p1", role: "make" as const, namespace: "n2", interface: "eth9" },
      mtu: 1500,
      up: true,
      addresses: ["10.1.0.1/30"],
    },
  },
  routes: [{ destination: "default", via: "10.0.0.1", device: "eth0" }],
  forwarding: { ipv4: true, ipv6: false },
};

const link = (ifname: string, ifindex: number, over: Partial<IpLinkJson> = {}): IpLinkJson => ({
  ifname,
  ifindex,
  mtu: 1500,
  flags: ["UP"],
  linkinfo: { info_kind: "veth" },
  ifalias: TAG,
  ...over,
});

/** Links elsewhere by "namespace/name" ("" the host's own). */
const elsewhere =
  (links: Record<string, IpLinkJson>): NodeState["linkIn"] =>
  (namespace, name) =>
    links[`${namespace ?? ""}/${name}`];

function state(over: Partial<NodeState> = {}, others: Record<string, IpLinkJson> = {}): NodeState {
  return {
    links: [link("lo", 1, { linkinfo: undefined, ifalias: undefined })],
    linkIn: elsewhere(others),
    routes: [],
    forwarding: { ipv4: false, ipv6: false },
    ...over,
  };
}

/** The node as made: both cables, addresses, the route and forwarding. */
function madeState(): NodeState {
  const eth0 = link("eth0", 2, {
    link_index: 20,
    addr_info: [
      { local: "10.0.0.2", prefixlen: 24 },
      { local: "fd00::2", prefixlen: 64 },
    ],
  });
  const eth1 = link("eth1", 3, { link_index: 9, addr_info: [{ local: "10.1.0.1", prefixlen: 30 }] });
  return state(
    {
      links: [link("lo", 1, { linkinfo: undefined, ifalias: undefined }), eth0, eth1],
      routes: [{ destination: "default", via: "10.0.0.1", device: "eth0", metric: 0, family: 4 }],
      forwarding: { ipv4: true, ipv6: false },
    },
    { "/h0": link("h0", 20, { link_index: 2, master: "br0", ifalias: undefined }), "n2/eth9": link("eth9", 9, { link_index: 3 }) },
  );
}

test("an empty namespace: each cable made and tagged, its host end onto the bridge, IPv4 before the link goes up, IPv6 after, then forwarding and routes", () => {
  expect(convergeSteps(spec, state(), OWNER)).toEqual([
    ["ip", "link", "add", "name", "h0", "mtu", "1500", "type", "veth", "peer", "name", "eth0", "netns", "n1", "mtu", "1500"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth0", "alias", TAG],
    ["ip", "link", "set", "dev", "h0", "mtu", "1500", "master", "br0", "up"],
    ["ip", "-n", "n1", "addr", "add", "10.0.0.2/24", "dev", "eth0"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth0", "mtu", "1500", "up"],
    ["ip", "link", "add", "name", "p1", "mtu", "1500", "type", "veth", "peer", "name", "eth1", "netns", "n1", "mtu", "1500"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth1", "alias", TAG],
    ["ip", "-n", "n1", "addr", "add", "10.1.0.1/30", "dev", "eth1"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth1", "mtu", "1500", "up"],
    ["ip", "-n", "n1", "addr", "add", "fd00::2/64", "dev", "eth0", "nodad"],
    ["ip", "netns", "exec", "n1", "sysctl", "-e", "-q", "-w", "net.ipv4.ip_forward=1"],
    ["ip", "-n", "n1", "-4", "route", "replace", "default", "via", "10.0.0.1", "dev", "eth0"],
  ]);
});

test("a node as made needs nothing, and reads back as its spec", () => {
  expect(convergeSteps(spec, madeState(), OWNER, spec)).toEqual([]);
  expect(observe(spec, madeState())).toEqual({ interfaces: spec.interfaces, routes: spec.routes, forwarding: spec.forwarding });
});

test("drift: an extra address goes, a missing route comes back, a host end off its bridge goes back on, an end the other node parked is taken", () => {
  const made = madeState();
  made.links[1].addr_info!.push({ local: "10.0.0.9", prefixlen: 24 });
  made.routes = [];
  const offBridgeEnd = link("h0", 20, { link_index: 2, ifalias: undefined });
  const offBridge: NodeState = { ...made, linkIn: elsewhere({ "/h0": offBridgeEnd }) };
  const taker = {
    ...spec,
    interfaces: { ...spec.interfaces, eth1: { ...spec.interfaces.eth1, pair: { ...spec.interfaces.eth1.pair, role: "take" as const } } },
  };
  const parked = { ...offBridge, links: offBridge.links.filter((l) => l.ifname !== "eth1") };
  const withPark = elsewhere({ "/h0": offBridgeEnd, "/p1": link("p1", 30, { ifalias: undefined }) });
  expect(observe(spec, offBridge)).toMatchObject({
    interfaces: { eth0: { bridge: { name: "", hostEnd: "h0" }, addresses: ["10.0.0.2/24", "fd00::2/64", "10.0.0.9/24"] } },
    routes: [],
  });
  expect(convergeSteps(taker, { ...parked, linkIn: withPark }, OWNER, taker)).toEqual([
    ["ip", "link", "set", "dev", "h0", "master", "br0"],
    ["ip", "-n", "n1", "addr", "del", "10.0.0.9/24", "dev", "eth0"],
    ["ip", "link", "set", "dev", "p1", "netns", "n1"],
    ["ip", "-n", "n1", "link", "set", "dev", "p1", "name", "eth1"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth1", "alias", TAG],
    ["ip", "-n", "n1", "addr", "add", "10.1.0.1/30", "dev", "eth1"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth1", "mtu", "1500", "up"],
    ["ip", "-n", "n1", "-4", "route", "replace", "default", "via", "10.0.0.1", "dev", "eth0"],
  ]);
  expect(() => convergeSteps(taker, { ...parked, linkIn: () => undefined }, OWNER, taker)).toThrow(/not parked as "p1"/);
  // A pair whose far end is neither parked nor the other node's named end is another cable: made again.
  const strayed = madeState();
  const stray: NodeState = {
    ...strayed,
    linkIn: elsewhere({
      "/h0": link("h0", 20, { link_index: 2, master: "br0", ifalias: undefined }),
      "n2/eth9": link("eth9", 9, { link_index: 7 }),
    }),
  };
  expect(convergeSteps(spec, stray, OWNER, spec).slice(0, 3)).toEqual([
    deleted("eth1"),
    ["ip", "link", "add", "name", "p1", "mtu", "1500", "type", "veth", "peer", "name", "eth1", "netns", "n1", "mtu", "1500"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth1", "alias", TAG],
  ]);
});

test("edits: an interface no longer wanted goes; a pulled cable goes down with its IPv6 address and route kept in state only", () => {
  const pulled = { ...spec, interfaces: { eth0: { ...spec.interfaces.eth0, up: false } } };
  expect(convergeSteps(pulled, madeState(), OWNER, spec)).toEqual([
    deleted("eth1"),
    ["ip", "link", "set", "dev", "h0", "down"],
    ["ip", "-n", "n1", "addr", "del", "fd00::2/64", "dev", "eth0"],
    ["ip", "-n", "n1", "link", "set", "dev", "eth0", "down"],
  ]);
  // What the kernel then has: eth0 down, no IPv6 address, no route through it.
  const down = madeState();
  down.links = down.links.filter((l) => l.ifname !== "eth1");
  down.links[1] = { ...down.links[1], flags: [], addr_info: [{ local: "10.0.0.2", prefixlen: 24 }] };
  down.routes = [];
  const after = { ...down, linkIn: elsewhere({ "/h0": link("h0", 20, { link_index: 2, master: "br0", flags: [], ifalias: undefined }) }) };
  expect(observe(pulled, after)).toEqual({ interfaces: pulled.interfaces, routes: pulled.routes, forwarding: pulled.forwarding });
  expect(convergeSteps(pulled, after, OWNER, pulled)).toEqual([]);
  // A route no longer wanted goes by its identity (destination, family, metric), whatever its gateway now.
  const moved = madeState();
  moved.routes[0] = { ...moved.routes[0], via: "10.0.0.7" };
  expect(convergeSteps({ ...spec, routes: [] }, moved, OWNER, spec)).toEqual([
    ["ip", "-n", "n1", "-4", "route", "del", "default", "metric", "0"],
  ]);
});

test("the first update of a Lab's Namespace takes over its own records only, and tags its interfaces", () => {
  const made = madeState();
  made.links[1] = { ...made.links[1], ifalias: "pulumi-netns:fedcba9876543210@proj/stack" };
  expect(convergeSteps(spec, made, OWNER, { name: "n1" } as never)).toEqual([
    ["ip", "-n", "n1", "link", "set", "dev", "eth0", "alias", TAG],
    [
      "sh",
      "-c",
      expect.stringContaining("printf"),
      "sh",
      TAG,
      "/run/pulumi-netns/owner/addr/netns/n1/eth0/10.0.0.2_24",
      "/run/pulumi-netns/owner/addr/netns/n1/eth0/fd00::2_64",
      "/run/pulumi-netns/owner/addr/netns/n1/eth1/10.1.0.1_30",
      "/run/pulumi-netns/owner/route/netns/n1/ipv4/default/0",
      "--",
      "/run/pulumi-netns/sysctl/netns/n1/ipv4-forwarding",
      "/run/pulumi-netns/sysctl/netns/n1/ipv6-forwarding",
    ],
  ]);
});

test("two routes to one place with one metric, or a gateway of the other family, are refused naming the route", async () => {
  const { labNodeKind } = await import("../../provider/kinds/labNode");
  const issues = (routes: unknown[]) =>
    labNodeKind.inputs
      .safeParse({ connection: { host: "10.0.0.1", privateKey: "K" }, ...spec, routes })
      .error?.issues.map((i) => i.path.join("."));
  expect(issues([spec.routes[0], { ...spec.routes[0], via: "10.0.0.3" }])).toEqual(["routes.1"]);
  expect(issues([spec.routes[0], { ...spec.routes[0], metric: 10 }])).toBeUndefined();
  expect(issues([{ destination: "fd00:9::/64", via: "10.0.0.1", device: "eth0" }])).toEqual(["routes.0.via"]);
});

test("forwarding is read from `ip -j netconf`'s entries for all interfaces", () => {
  const listing = JSON.stringify([
    { family: "inet", interface: "lo", forwarding: false },
    { family: "inet", interface: "all", forwarding: true },
    { family: "inet6", interface: "all", forwarding: false },
  ]);
  expect(parseForwarding(listing)).toEqual({ ipv4: true, ipv6: false });
});
