/** LabSegment's pure parts: the commands from what a host has to the spec, what it reads back, and which devices it refuses. */
import { observeSegment, portRefusal, SegmentState, segmentSteps } from "../../provider/kinds/labSegment";
import type { IpLinkJson } from "../../provider/iproute";

const OWNER = "5e95e95e95e95e95@lab/stack";
const tag = (owner: string) => `pulumi-netns:${owner}`;

const bridge = (over: Partial<IpLinkJson> = {}): IpLinkJson => ({
  ifindex: 5,
  ifname: "br0",
  mtu: 1450,
  flags: ["BROADCAST", "UP"],
  linkinfo: { info_kind: "bridge" },
  ...over,
});

const port = (over: Partial<IpLinkJson> = {}, data: Record<string, unknown> = {}): IpLinkJson => ({
  ifindex: 6,
  ifname: "vx0",
  mtu: 1450,
  flags: ["BROADCAST", "UP"],
  master: "br0",
  ifalias: tag(OWNER),
  linkinfo: { info_kind: "vxlan", info_data: { id: 42, port: 4789, local: "10.9.9.1", link: "eth0", ...data } } as IpLinkJson["linkinfo"],
  ...over,
});

const state = (links: IpLinkJson[], remotes = ["10.9.9.2", "10.9.9.3"]): SegmentState => ({
  bridge: links.find((l) => l.ifname === "br0"),
  link: (name) => links.find((l) => l.ifname === name),
  remotes,
});

const vxlan = { name: "vx0", vni: 42, local: "10.9.9.1", remotes: ["10.9.9.2", "10.9.9.3"], dstport: 4789, device: "eth0" };
const spec = { name: "br0", mtu: 1450, up: true, vxlan };

test("a segment as asked needs no command", () => {
  expect(segmentSteps(spec, state([bridge(), port()]), OWNER, spec)).toEqual([]);
  expect(segmentSteps({ ...spec, vxlan: undefined }, state([bridge()]), OWNER, { ...spec, vxlan: undefined })).toEqual([]);
});

test("from a bare bridge: its MTU pinned, the port made, tagged, flooding to each other host, on the bridge", () => {
  const made = bridge({ mtu: 1500, flags: ["BROADCAST"] });
  expect(segmentSteps(spec, state([made], []), OWNER, undefined, true)).toEqual([
    ["ip", "link", "set", "dev", "br0", "mtu", "1449"],
    ["ip", "link", "set", "dev", "br0", "mtu", "1450"],
    ["ip", "link", "set", "dev", "br0", "up"],
    ["ip", "link", "add", "name", "vx0", "type", "vxlan", "id", "42", "local", "10.9.9.1", "dstport", "4789", "dev", "eth0"],
    ["ip", "link", "set", "dev", "vx0", "alias", tag(OWNER)],
    ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "10.9.9.2"],
    ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "10.9.9.3"],
    ["ip", "link", "set", "dev", "vx0", "mtu", "1450", "master", "br0", "up"],
  ]);
});

test("drift repaired in place: the port off its bridge, a flood entry gone, a host added, the bridge down", () => {
  expect(segmentSteps(spec, state([bridge(), port({ master: undefined })]), OWNER, spec)).toEqual([
    ["ip", "link", "set", "dev", "vx0", "master", "br0"],
  ]);
  expect(segmentSteps(spec, state([bridge(), port()], ["10.9.9.2", "10.9.9.4"]), OWNER, spec)).toEqual([
    ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx0", "dst", "10.9.9.3"],
    ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx0", "dst", "10.9.9.4"],
  ]);
  expect(segmentSteps(spec, state([bridge({ flags: [] }), port()]), OWNER, spec)).toEqual([["ip", "link", "set", "dev", "br0", "up"]]);
});

test("a device of another identity (VNI, underlay, a fixed remote) is made again under the same name", () => {
  const remade = (data: Record<string, unknown>) => segmentSteps(spec, state([bridge(), port({}, data)]), OWNER, spec).slice(0, 2);
  const again = [
    ["ip", "link", "del", "dev", "vx0"],
    ["ip", "link", "add", "name", "vx0", "type", "vxlan", "id", "42", "local", "10.9.9.1", "dstport", "4789", "dev", "eth0"],
  ];
  expect(remade({ id: 43 })).toEqual(again);
  expect(remade({ link: "eth1" })).toEqual(again);
  expect(remade({ remote: "10.9.9.9" })).toEqual(again);
});

test("a renamed port: the old device goes first, unless another owner took it; a port no longer wanted goes", () => {
  const previous = { ...spec, vxlan: { ...vxlan, name: "vx-old" } };
  const old = port({ ifname: "vx-old" });
  expect(segmentSteps(spec, state([bridge(), old]), OWNER, previous)[0]).toEqual(["ip", "link", "del", "dev", "vx-old"]);
  const taken = port({ ifname: "vx-old", ifalias: tag("0123456789abcdef@lab/stack") });
  expect(segmentSteps(spec, state([bridge(), taken]), OWNER, previous)[0]).toEqual(expect.arrayContaining(["add", "vx0"]));
  expect(segmentSteps({ ...spec, vxlan: undefined }, state([bridge(), port()]), OWNER, spec)).toEqual([
    ["ip", "link", "del", "dev", "vx0"],
  ]);
  // Known by the `port` output alone, after a refresh that found it off the bridge.
  expect(segmentSteps({ ...spec, vxlan: undefined }, state([bridge(), port()]), OWNER, { ...spec, vxlan: undefined, port: "vx0" })).toEqual(
    [["ip", "link", "del", "dev", "vx0"]],
  );
});

test("read back: the port only while on the bridge (its name kept as `port`); MTU and state whichever of the two differs", () => {
  expect(observeSegment(spec, state([bridge(), port()]))).toEqual({ mtu: 1450, up: true, vxlan, port: "vx0" });
  expect(observeSegment(spec, state([bridge(), port({ master: undefined })]))).toEqual({
    mtu: 1450,
    up: true,
    vxlan: undefined,
    port: "vx0",
  });
  expect(observeSegment(spec, state([bridge()]))).toMatchObject({ vxlan: undefined, port: undefined });
  expect(observeSegment(spec, state([bridge(), port({ mtu: 1400 })])).mtu).toBe(1400);
  expect(observeSegment(spec, state([bridge({ mtu: 1400 }), port()])).mtu).toBe(1400);
  expect(observeSegment(spec, state([bridge(), port({ flags: [] })])).up).toBe(false);
  // Asked to be down: either one up by hand is drift too.
  const down = { ...spec, up: false };
  expect(observeSegment(down, state([bridge({ flags: [] }), port({ flags: [] })])).up).toBe(false);
  expect(observeSegment(down, state([bridge({ flags: [] }), port()])).up).toBe(true);
  // After a refresh that found it off the bridge, state has only `port`: the device is still looked at.
  expect(observeSegment({ ...spec, vxlan: undefined, port: "vx0" }, state([bridge(), port()])).port).toBe("vx0");
});

test("which device of the port's name the segment may take: its own or its previous port; one of its stack's moving from a Vxlan", () => {
  const refusal = (link: IpLinkJson, previous?: typeof spec | { name: string; up: boolean; mtu?: number }) =>
    portRefusal("root@h:22", spec, state([bridge(), link]), OWNER, previous)?.message;
  expect(refusal(port())).toBeUndefined();
  expect(refusal(port({ ifalias: undefined }), spec)).toBeUndefined();
  expect(refusal(port({ linkinfo: { info_kind: "veth" } }))).toBe(
    'root@h:22: interface "vx0" is a veth link: the segment\'s VXLAN port cannot be it',
  );
  expect(refusal(port({ ifalias: undefined }))).toMatch(/interface "vx0" already exists, made outside this stack/);
  const vxlanResource = tag("c".repeat(16) + "@lab/stack");
  expect(refusal(port({ ifalias: tag("c".repeat(16) + "@other/stack") }))).toMatch(/belongs to another resource \(stack other\/stack/);
  expect(refusal(port({ ifalias: vxlanResource }))).toMatch(/belongs to another resource/);
  // A stack made before LabSegment: the Bridge's state (no port) and its Vxlan's device, of the same identity.
  const fromBridge = { name: "br0", up: true, mtu: 1450 };
  expect(refusal(port({ ifalias: vxlanResource }), fromBridge)).toBeUndefined();
  expect(refusal(port({ ifalias: vxlanResource }, { id: 43 }), fromBridge)).toMatch(/belongs to another resource/);
  expect(refusal(port({ ifalias: tag("c".repeat(16) + "@other/stack") }), fromBridge)).toMatch(/belongs to another resource/);
});
