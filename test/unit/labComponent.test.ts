/**
 * The Lab component under Pulumi's mocks: which children a plan becomes, their names and inputs,
 * and that one more link adds its own children and changes no other child's inputs.
 */
import { isDeepStrictEqual } from "node:util";
import * as pulumi from "@pulumi/pulumi";
import { provider } from "../../provider";
import { setPaths } from "../../provider/controller";
import { kindNamed } from "../../provider/kinds";
import { endImpairment, Lab, LabArgs, LabPlan, LabTopologyError, planLab } from "../../sdk";
import { BIG_LAB_NODES } from "../../sdk/lab/component";
import * as native from "../../sdk/native";
import { nameMeeting } from "../harness/labSeats";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  provider?: string;
}

let registered: Registered[] = [];
/** LabAllocation name → its inputs as its check last returned them: the engine's olds for the next run. */
const allocationState = new Map<string, Record<string, unknown>>();

beforeAll(() => {
  pulumi.runtime.setMocks(
    {
      newResource: async (args) => {
        registered.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
        if (!args.type.endsWith(":LabAllocation")) return { id: `${args.name}-id`, state: args.inputs };
        // Mocks skip the provider: run its check as the engine does, with the last run's result as olds.
        const { inputs } = await provider("LabAllocation").check(allocationState.get(args.name) ?? {}, args.inputs);
        allocationState.set(args.name, inputs);
        return { id: `${args.name}-id`, state: inputs };
      },
      call: () => ({}),
    },
    "project",
    "stack",
    false,
  );
});

const connection = (host: string) => ({ host, privateKey: "KEY", hostKey: "SHA256:x" });
const twoHosts: LabArgs = {
  hosts: { east: connection("198.18.0.10"), west: connection("198.18.0.11") },
  nodes: {
    gw: { host: "east", router: true },
    pc: { host: "east", routes: [{ destination: "default", via: "gw" }] },
    web: { host: "west", routes: [{ destination: "default", via: "gw" }] },
    db: { host: "west" },
  },
  lans: { office: { members: ["gw:lan0", "pc:eth0"] } },
  links: [
    { endpoints: ["gw:wan0", "web:eth0"], impairment: { delayMs: 20, jitterMs: 2, lossPercent: 1 } },
    { endpoints: ["web:eth1", "db:eth0"] },
  ],
};

const valueOf = <T>(output: pulumi.Output<T>) => new Promise<T>((resolve) => output.apply(resolve));

/**
 * Builds a lab and waits until every child is registered; returns the children by "Type name" and the
 * plan as made. Each build is the next run of one stack: its LabAllocation sees the last build's.
 */
async function build(args: LabArgs, door: typeof Lab = Lab): Promise<{ lab: Lab; plan: LabPlan; children: Map<string, Registered> }> {
  registered = [];
  const lab = new door("lab", args);
  const children = [...((lab as unknown as { __childResources?: Set<pulumi.Resource> }).__childResources ?? [])];
  await new Promise((resolve) => pulumi.all(children.map((c) => c.urn)).apply(resolve));
  const plan = await valueOf(lab.plan);
  // Children whose inputs wait on the plan register once it is known.
  await new Promise((resolve) => setImmediate(resolve));
  const byName = new Map(registered.filter((r) => r.type !== "netns:index:Lab").map((r) => [`${r.type.split(":").pop()} ${r.name}`, r]));
  expect(byName.size).toBe(children.length);
  return { lab, plan, children: byName };
}

/** Inputs without the secret-wrapped connection and the serialized provider, for comparison. */
const plain = (r: Registered) => {
  const { connection: _connection, __provider: _provider, ...rest } = r.inputs;
  return rest;
};

test("a plan becomes one LabNode per node, one LabSegment per segment and host (bridge and VXLAN port), netem, named by identity", async () => {
  const { plan, children } = await build(twoHosts);
  expect([...children.keys()].sort()).toEqual(
    [
      "LabAllocation lab/allocations",
      // Each node's namespace, cable interfaces, addresses, routes and forwarding.
      "LabNode lab/db",
      "LabNode lab/gw",
      "LabNode lab/pc",
      "LabNode lab/web",
      // LAN office on east: its bridge.
      "LabSegment lab/office/east",
      // The link across hosts: a bridge with its VXLAN port per host, netem on both ends.
      "LabSegment lab/gw:wan0--web:eth0/east",
      "LabSegment lab/gw:wan0--web:eth0/west",
      "Netem lab/gw:wan0",
      "Netem lab/web:eth0",
    ].sort(),
  );
  const wan = plan.links.find((l) => l.id === "gw:wan0--web:eth0")!;
  const [eastEnd, westEnd] = wan.vxlan!.ends;

  expect(plain(children.get("LabSegment lab/gw:wan0--web:eth0/east")!)).toMatchObject({
    name: wan.bridges[0].name,
    mtu: 1450,
    vxlan: {
      name: eastEnd.name,
      vni: wan.vxlan!.vni,
      local: "198.18.0.10",
      remotes: ["198.18.0.11"],
      dstport: 4789,
      device: "eth0",
    },
  });
  // Flood entries on two hosts too: a third host is one more remote, in place.
  expect(plain(children.get("LabSegment lab/gw:wan0--web:eth0/west")!).vxlan).toEqual({
    name: westEnd.name,
    vni: wan.vxlan!.vni,
    local: "198.18.0.11",
    remotes: ["198.18.0.10"],
    dstport: 4789,
    device: "eth0",
  });
  // A LAN on one host: its bridge alone, at the kernel's MTU.
  const office = plain(children.get("LabSegment lab/office/east")!);
  expect([office.mtu, "vxlan" in office]).toEqual([1500, false]);
  // The link within west is one veth pair: db (first by name) makes it, web takes the end db parked.
  const inWest = plan.links.find((l) => l.id === "db:eth0--web:eth1")!;
  const addresses = plan.allocations.addresses;
  const gwOnWan = addresses["gw:wan0"][0].split("/")[0];
  expect(plain(children.get("LabNode lab/web")!)).toEqual({
    name: "web",
    interfaces: {
      eth0: {
        bridge: { name: wan.bridges[1].name, hostEnd: wan.members.find((m) => m.node === "web")!.hostVeth },
        mtu: 1450,
        up: true,
        addresses: addresses["web:eth0"],
      },
      eth1: {
        pair: { park: inWest.park, role: "take", namespace: "db", interface: "eth0" },
        mtu: 1500,
        up: true,
        addresses: addresses["web:eth1"],
      },
    },
    routes: [{ destination: "default", via: gwOnWan, device: "eth0" }],
    forwarding: { ipv4: false, ipv6: false },
    owner: expect.any(String),
    holder: undefined,
  });
  expect(plain(children.get("LabNode lab/db")!).interfaces).toEqual({
    eth0: {
      pair: { park: inWest.park, role: "make", namespace: "web", interface: "eth1" },
      mtu: 1500,
      up: true,
      addresses: addresses["db:eth0"],
    },
  });
  expect(plain(children.get("LabNode lab/gw")!).forwarding).toEqual({ ipv4: true, ipv6: false });
  const gwOnLan = addresses["gw:lan0"][0].split("/")[0];
  expect(plain(children.get("LabNode lab/pc")!).routes).toEqual([{ destination: "default", via: gwOnLan, device: "eth0" }]);
  expect(plain(children.get("Netem lab/web:eth0")!)).toMatchObject({
    namespace: "web",
    device: "eth0",
    delayMs: 10,
    jitterMs: 1,
    lossPercent: 1,
  });
  // The connection reaches each child as a secret.
  expect(children.get("LabNode lab/web")!.inputs.connection).toMatchObject({ value: connection("198.18.0.11") });
});

test("one more link adds its own segment parts, and changes only the two nodes it joins", async () => {
  const { children: before } = await build(twoHosts);
  const { children: after } = await build({ ...twoHosts, links: [...twoHosts.links!, { endpoints: ["pc:eth1", "db:eth1"] }] });
  const added = [...after.keys()].filter((k) => !before.has(k)).sort();
  expect(added).toEqual(["LabSegment lab/db:eth1--pc:eth1/east", "LabSegment lab/db:eth1--pc:eth1/west"]);
  const changed = [...before.keys()].filter((k) => !isDeepStrictEqual(plain(after.get(k)!), plain(before.get(k)!))).sort();
  expect(changed).toEqual(["LabAllocation lab/allocations", "LabNode lab/db", "LabNode lab/pc"]);
  const { eth1, ...kept } = plain(after.get("LabNode lab/pc")!).interfaces as Record<string, unknown>;
  expect(kept).toEqual(plain(before.get("LabNode lab/pc")!).interfaces);
  expect(eth1).toMatchObject({ bridge: { name: expect.any(String) }, up: true });
});

test("services, expectations, and cables that are down: both nodes' ends down", async () => {
  const http = { command: ["python3", "-m", "http.server", "80"], readiness: { tcpPort: 80 } };
  const args: LabArgs = {
    ...twoHosts,
    nodes: { ...twoHosts.nodes, web: { ...twoHosts.nodes.web, services: { http } } },
    links: [twoHosts.links![0], { endpoints: ["web:eth1", "db:eth0"], down: true }],
    lans: { office: { members: ["gw:lan0", { endpoint: "pc:eth0", down: true }] } },
    pools: { lan: { ipv6: "fd00:1::/48" } },
    expect: ["all-pairs", { from: "gw", to: "web:80" }, { from: "gw", to: "pc", expect: "unreachable" }],
  };
  const { plan, children } = await build(args);
  const up = (children: Map<string, Registered>, node: string, ifname: string) =>
    (plain(children.get(`LabNode lab/${node}`)!).interfaces as any)[ifname].up;
  expect([up(children, "db", "eth0"), up(children, "web", "eth1"), up(children, "pc", "eth0"), up(children, "gw", "lan0")]).toEqual([
    false,
    false,
    false,
    true,
  ]);

  expect(plain(children.get("Service lab/web/service/http")!)).toMatchObject({
    namespace: "web",
    name: "http",
    command: http.command,
    readiness: { tcpPort: 80 },
  });
  const address = (endpoint: string) => plan.allocations.addresses[endpoint][0].split("/")[0];
  // A node is tried at its first address on an interface that is up; pc's and db's only ones are down.
  expect(plain(children.get("Check lab/gw/expect")!)).toMatchObject({
    namespace: "gw",
    from: "node gw",
    targets: [
      { address: address("db:eth0"), protocol: "icmp", expect: "reachable", label: "db" },
      { address: address("pc:eth0"), protocol: "icmp", expect: "unreachable", label: "pc" },
      { address: address("web:eth0"), protocol: "icmp", expect: "reachable", label: "web" },
      { address: address("web:eth0"), protocol: "tcp", port: 80, expect: "reachable", label: "web:80" },
    ],
  });
  expect(plain(children.get("Check lab/pc/expect")!).targets).toEqual([
    { address: address("db:eth0"), protocol: "icmp", expect: "reachable", label: "db" },
    { address: address("gw:lan0"), protocol: "icmp", expect: "reachable", label: "gw" },
    { address: address("web:eth0"), protocol: "icmp", expect: "reachable", label: "web" },
  ]);

  // Up again: the same children, nothing suspended, and every check runs again.
  const { children: upAgain } = await build({ ...args, links: twoHosts.links, lans: twoHosts.lans });
  expect([...upAgain.keys()].sort()).toEqual([...children.keys()].sort());
  expect([up(upAgain, "db", "eth0"), up(upAgain, "web", "eth1"), up(upAgain, "pc", "eth0")]).toEqual([true, true, true]);
  expect(plain(upAgain.get("Check lab/gw/expect")!).triggers).not.toEqual(plain(children.get("Check lab/gw/expect")!).triggers);
});

test("an expectation that names what is not there is refused, naming it", () => {
  const refused = (expect: LabArgs["expect"]) => {
    try {
      planLab({ ...twoHosts, hosts: { east: { host: "198.18.0.10" }, west: { host: "198.18.0.11" } }, expect });
    } catch (err) {
      return (err as LabTopologyError).message;
    }
    return "accepted";
  };
  expect(refused([{ from: "nobody", to: "web" }])).toMatch(/expect\[0\]: unknown node "nobody"/);
  expect(refused([{ from: "pc", to: "web:http" }])).toMatch(/expect\[0\]: "web:http" is a node, "node:PORT" or an address/);
  expect(refused([{ from: "pc", to: "web", protocol: "udp" }])).toMatch(/expect\[0\]: udp needs a port/);
  expect(refused([{ from: "pc", to: "web:80", protocol: "icmp" }])).toMatch(/expect\[0\]: icmp takes no port/);
  expect(refused([{ from: "pc", to: "10.9.9.9" }])).toBe("accepted");
});

describe("what exists never moves: the LabAllocation keeps the last run's seats", () => {
  const spec = (args: LabArgs) => ({
    ...args,
    hosts: Object.fromEntries(Object.entries(args.hosts).map(([h, c]) => [h, { host: c.host }])),
  });

  test("a LAN added whose hash meets an existing LAN's subnet (and sorts first) leaves that LAN's subnet and addresses", async () => {
    const before = await build(twoHosts);
    // The LAN pool is 172.16.0.0/16 in /24s: 256 seats.
    const rival = nameMeeting("office", "lan/ipv4", 256, (i) => `lan${i}`);
    const grown: LabArgs = {
      ...twoHosts,
      nodes: { ...twoHosts.nodes, extra: { host: "east" } },
      lans: { ...twoHosts.lans, [rival]: { members: ["extra:eth0"] } },
    };
    // A new stack (no LabAllocation yet) would give the rival the existing LAN's subnet: the test can fail.
    expect(planLab(spec(grown)).lans.find((l) => l.id === rival)!.subnets).toEqual(before.plan.lans[0].subnets);
    const after = await build(grown);
    const office = (plan: LabPlan) => plan.lans.find((l) => l.id === "office")!;
    expect(office(after.plan)).toEqual(office(before.plan));
    expect(plain(after.children.get("LabNode lab/pc")!)).toEqual(plain(before.children.get("LabNode lab/pc")!));
    expect(after.plan.lans.find((l) => l.id === rival)!.subnets).not.toEqual(office(before.plan).subnets);
  });

  test("a member added whose hash meets an existing member's address (and sorts first) leaves that member's address", async () => {
    const before = await build(twoHosts);
    const seat = (endpoint: string) => before.plan.lans[0].members.find((m) => m.endpoint === endpoint)!.addresses;
    // Host numbers 1..254 of a /24.
    const rival = nameMeeting("pc:eth0", "lan/office", 254, (i) => `a${i}:eth0`);
    const node = rival.split(":")[0];
    const grown: LabArgs = {
      ...twoHosts,
      nodes: { ...twoHosts.nodes, [node]: { host: "east" } },
      lans: { office: { members: ["gw:lan0", "pc:eth0", rival] } },
    };
    expect(planLab(spec(grown)).lans[0].members.find((m) => m.endpoint === rival)!.addresses).toEqual(seat("pc:eth0"));
    const after = await build(grown);
    expect(after.plan.lans[0].members.find((m) => m.endpoint === "pc:eth0")!.addresses).toEqual(seat("pc:eth0"));
    expect(after.plan.lans[0].members.find((m) => m.endpoint === rival)!.addresses).not.toEqual(seat("pc:eth0"));
  });

  test("a link's endpoints named the other way round keep their addresses", async () => {
    const before = await build(twoHosts);
    const swapped: LabArgs = { ...twoHosts, links: [twoHosts.links![0], { endpoints: ["db:eth0", "web:eth1"] }] };
    // Planned afresh, the ends would trade .1 and .2: the test can fail.
    expect(planLab(spec(swapped)).allocations.addresses["db:eth0"]).toEqual(before.plan.allocations.addresses["web:eth1"]);
    const after = await build(swapped);
    expect(after.plan.allocations).toEqual(before.plan.allocations);
    for (const [key, child] of before.children) {
      if (!key.startsWith("LabAllocation ")) expect([key, plain(after.children.get(key)!)]).toEqual([key, plain(child)]);
    }
  });
});

test("one more host on a LAN over three adds its segment part; the others' VXLAN ports gain it as a remote, in place", async () => {
  const fourHosts: LabArgs = {
    ...twoHosts,
    hosts: { ...twoHosts.hosts, north: connection("198.18.0.12"), south: connection("198.18.0.13") },
  };
  const nodes = { ...twoHosts.nodes, far: { host: "north" }, deep: { host: "south" } };
  const wideLan = (...members: string[]): LabArgs => ({ ...fourHosts, nodes, lans: { office: { members } } });
  const { children: before } = await build(wideLan("gw:lan0", "pc:eth0", "db:eth1", "far:eth0"));
  const { children: after } = await build(wideLan("gw:lan0", "pc:eth0", "db:eth1", "far:eth0", "deep:eth0"));
  expect([...after.keys()].filter((k) => !before.has(k)).sort()).toEqual(["LabSegment lab/office/south"]);
  expect(plain(after.get("LabSegment lab/office/south")!).vxlan).toMatchObject({
    local: "198.18.0.13",
    remotes: ["198.18.0.10", "198.18.0.11", "198.18.0.12"],
  });
  const changed = [...before.keys()].filter((k) => !isDeepStrictEqual(plain(after.get(k)!), plain(before.get(k)!))).sort();
  // deep's node gains its interface.
  expect(changed).toEqual([
    "LabAllocation lab/allocations",
    "LabNode lab/deep",
    "LabSegment lab/office/east",
    "LabSegment lab/office/north",
    "LabSegment lab/office/west",
  ]);
  const segment = provider("LabSegment");
  for (const key of changed.filter((k) => k.startsWith("LabSegment "))) {
    const [olds, news] = [before, after].map((children): Record<string, unknown> => ({
      ...plain(children.get(key)!),
      connection: connection("198.18.0.10"),
    }));
    const port = (props: Record<string, unknown>) => props.vxlan as Record<string, unknown>;
    expect({ ...news, vxlan: { ...port(news), remotes: undefined } }).toEqual({ ...olds, vxlan: { ...port(olds), remotes: undefined } });
    expect(port(news).remotes).toEqual([...(port(olds).remotes as string[]), "198.18.0.13"].sort());
    const [checkedOlds, checkedNews] = await Promise.all([olds, news].map(async (inputs) => (await segment.check({}, inputs)).inputs));
    // State as the create left it: the inputs, and the paths they set.
    const state = { ...checkedOlds, setProperties: setPaths(kindNamed("LabSegment"), checkedOlds) };
    expect(await segment.diff("id", state, checkedNews)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  }
});

test("each end of an impaired link gets half the delay and jitter; per-direction rates as given", () => {
  const link = {
    delayMs: 20,
    jitterMs: 5,
    lossPercent: 2,
    corruptPercent: 0,
    duplicatePercent: 1,
    reorderPercent: 0,
    rateKbit: 10000,
    limit: 5000,
  };
  expect(endImpairment(link)).toEqual({ ...link, delayMs: 10, jitterMs: 2.5 });
});

test("a topology that cannot work is refused before any child is registered", () => {
  registered = [];
  const threeHosts = { ...twoHosts.hosts, north: connection("198.18.0.12") };
  const nodes = { ...twoHosts.nodes, far: { host: "north" } };
  const lans = { office: { members: ["gw:lan0", "web:eth9", "far:eth0"], mtu: 1500 } };
  expect(() => new Lab("bad", { ...twoHosts, hosts: threeHosts, nodes, lans })).toThrow(LabTopologyError);
  expect(registered.filter((r) => r.type !== "netns:index:Lab")).toEqual([]);
});

test("on the native provider the same children are made, each through its host's Provider, without a connection", async () => {
  const dynamic = await build(twoHosts);
  const made = await build(twoHosts, native.Lab as unknown as typeof Lab);
  const providers = [...made.children.values()].filter((r) => r.type === "pulumi:providers:netns");
  expect(providers.map((p) => [p.name, p.inputs.host])).toEqual([
    ["lab/east", "198.18.0.10"],
    ["lab/west", "198.18.0.11"],
  ]);
  const children = [...made.children.values()].filter((r) => r.type.startsWith("netns:index:"));
  expect(children.map((r) => `${r.type.split(":").pop()} ${r.name}`).sort()).toEqual([...dynamic.children.keys()].sort());
  for (const child of children) {
    expect(child.inputs.connection).toBeUndefined();
    const host = child.type.endsWith(":LabAllocation")
      ? "east"
      : child.name.split("/")[1] === "db" || child.name.split("/")[1] === "web"
        ? "west"
        : undefined;
    if (host) expect(child.provider).toContain(`pulumi:providers:netns::lab/${host}::`);
  }
  const nodes = children.filter((r) => r.type === "netns:index:LabNode");
  // The dynamic classes send the owner; the native provider derives it from the URN.
  const withoutOwner = (r: Registered) => ({ ...plain(r), owner: undefined });
  expect(nodes.map(withoutOwner)).toEqual(nodes.map((n) => withoutOwner(dynamic.children.get(`LabNode ${n.name}`)!)));
});

test("a Lab of 300 nodes or more on the dynamic provider warns that the native one suits it better; on the native one it does not", async () => {
  const warn = jest.spyOn(pulumi.log, "warn").mockImplementation(() => Promise.resolve());
  try {
    const lab = (count: number): LabArgs => ({
      hosts: { east: connection("198.18.0.10") },
      nodes: Object.fromEntries(Array.from({ length: count }, (_, i) => [`n${i}`, { host: "east" }])),
    });
    await build(lab(BIG_LAB_NODES));
    expect(warn.mock.calls.map(([message]) => message)).toEqual([
      expect.stringMatching(/^a Lab of 300 nodes on the dynamic provider: .*The native provider \(`pulumi-netns\/native`\)/),
    ]);
    warn.mockClear();
    await build(lab(BIG_LAB_NODES - 1));
    await build(lab(BIG_LAB_NODES), native.Lab as unknown as typeof Lab);
    expect(warn).not.toHaveBeenCalled();
  } finally {
    warn.mockRestore();
  }
});
