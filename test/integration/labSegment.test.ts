/**
 * A LabSegment's whole life on real kernels, over three throwaway hosts: a segment's part on two of them
 * (bridge and VXLAN port) carries a ping between LabNodes; drift of each part (bridge down or at another
 * MTU, the port off its bridge, a flood entry gone, the port deleted or made again with another VNI) is
 * read back and repaired in place; in-place edits (a third host's remote, MTU, the port removed and added
 * back, a new VNI); an interrupted create finished by a plain retry, at every command; a stack's Bridge
 * and Vxlan taken over; the sweep; delete leaving every host as it was.
 */
import { closeAllHosts } from "../../provider";
import { connection as connectionSchema } from "../../provider/connection";
import type { Props } from "../../provider/kind";
import { haltAfterCommands, hostFor } from "../../provider/ssh/pool";
import { findOrphans, removeOrphans, stateResource } from "../../provider/sweep";
import { engine, recorder } from "../harness/engine";
import { hostSnapshot } from "../harness/hostSnapshot";
import { TestHost, TestLab } from "../harness/throwawayHosts";

let lab: TestLab;
let east: TestHost;
let west: TestHost;
let north: TestHost;

beforeAll(async () => {
  lab = await TestLab.create(3);
  [east, west, north] = lab.hosts;
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const segment = engine("LabSegment");
const labNode = engine("LabNode");
const made = recorder();
afterEach(() => made.destroy());

const OWNER = "5e95e95e95e95e95@lab/stack";
const records = (host: TestHost) => host.sh(["sh", "-c", "find /run/pulumi-netns -type f ! -name lock 2>/dev/null | sort; true"]);

/** A change by hand: the provider's next read must not get a listing from before it. */
const byHand = (host: TestHost, argv: string[]) => {
  const out = host.sh(argv);
  closeAllHosts();
  return out;
};

function part(host: TestHost, remotes: TestHost[], over: Props = {}): Props {
  return {
    connection: host.connection(),
    owner: OWNER,
    name: "lsbr",
    mtu: 1450,
    vxlan: { name: "lsvx", vni: 4242, local: host.address, remotes: remotes.map((h) => h.address), device: "eth0" },
    ...over,
  };
}

const node = (host: TestHost, address: string): Props => ({
  connection: host.connection(),
  name: "lsn",
  interfaces: { eth0: { bridge: { name: "lsbr", hostEnd: "lsh" }, mtu: 1450, addresses: [address] } },
});

const ping = (host: TestHost, address: string) =>
  host.sh(["ip", "netns", "exec", "lsn", "ping", "-n", "-c", "1", "-W", "2", address], { allowFailure: true });
const ifindex = (host: TestHost, name: string) => JSON.parse(host.sh(["ip", "-j", "link", "show", "dev", name]))[0].ifindex as number;
const floods = (host: TestHost) =>
  host
    .sh(["bridge", "fdb", "show", "dev", "lsvx"])
    .split("\n")
    .filter((l) => l.startsWith("00:00:00:00:00:00"))
    .map((l) => l.split(" dst ")[1].split(" ")[0])
    .sort();

/** Reads the part; when the host differs from state, diff must say so (in place), and update repairs it. */
async function repaired(id: string, outs: Props, news: Props, drifted: (props: Props) => void): Promise<Props> {
  const read = await segment.read(id, outs);
  expect(read.id).toBe(id);
  drifted(read.props);
  expect(await segment.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
  const after = await segment.update(id, read.props, news);
  expect((await segment.read(id, after)).props).toEqual(after);
  return after;
}

test("a LabSegment's life: traffic across hosts, drift of each part repaired, edited in place, deleted without a trace", async () => {
  const before = [east, west, north].map(hostSnapshot);
  const e = await made.create(segment, part(east, [west]));
  await made.create(segment, part(west, [east]));
  await made.create(labNode, node(east, "10.77.0.1/24"));
  await made.create(labNode, node(west, "10.77.0.2/24"));
  expect(ping(east, "10.77.0.2")).toContain(" 1 received");
  expect(e.outs).toMatchObject({ name: "lsbr", mtu: 1450, up: true, vxlan: { name: "lsvx", vni: 4242, remotes: [west.address] } });
  expect(await segment.read(e.id, e.outs)).toEqual({ id: e.id, props: e.outs });
  expect(await segment.diff(e.id, e.outs, part(east, [west]))).toMatchObject({ changes: false });
  expect(east.sh(["ip", "link", "show", "dev", "lsvx"])).toContain("alias pulumi-netns:");

  // Drift, one part at a time.
  const wanted = part(east, [west]);
  byHand(east, ["ip", "link", "set", "dev", "lsbr", "down"]);
  let outs = await repaired(e.id, e.outs, wanted, (p) => expect(p.up).toBe(false));
  byHand(east, ["ip", "link", "set", "dev", "lsbr", "mtu", "1400"]);
  outs = await repaired(e.id, outs, wanted, (p) => expect(p.mtu).toBe(1400));
  expect(east.sh(["ip", "link", "show", "dev", "lsbr"])).toContain("mtu 1450");
  byHand(east, ["ip", "link", "set", "dev", "lsvx", "nomaster"]);
  outs = await repaired(e.id, outs, wanted, (p) => expect(p.vxlan).toBeUndefined());
  expect(ping(east, "10.77.0.2")).toContain(" 1 received");
  byHand(east, ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "lsvx", "dst", west.address]);
  outs = await repaired(e.id, outs, wanted, (p) => expect((p.vxlan as Props).remotes).toEqual([]));
  expect(floods(east)).toEqual([west.address]);
  byHand(east, ["ip", "link", "del", "dev", "lsvx"]);
  outs = await repaired(e.id, outs, wanted, (p) => expect(p.vxlan).toBeUndefined());
  expect(ping(east, "10.77.0.2")).toContain(" 1 received");
  byHand(east, ["sh", "-c", "ip link del dev lsvx && ip link add lsvx type vxlan id 4243 local $0 dstport 4789 dev eth0", east.address]);
  byHand(east, ["ip", "link", "set", "dev", "lsvx", "master", "lsbr", "mtu", "1450", "up"]);
  outs = await repaired(e.id, outs, wanted, (p) => expect((p.vxlan as Props).vni).toBe(4243));
  expect(east.sh(["ip", "-d", "link", "show", "dev", "lsvx"])).toContain("vxlan id 4242 ");
  expect(ping(east, "10.77.0.2")).toContain(" 1 received");

  // Edits in place: a third host joins (one more flood entry, the same device), the MTU, the port gone and back, a new VNI.
  const port = ifindex(east, "lsvx");
  const bridge = ifindex(east, "lsbr");
  const three = part(east, [west, north]);
  expect(await segment.diff(e.id, outs, three)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  outs = await segment.update(e.id, outs, three);
  expect(floods(east)).toEqual([west.address, north.address].sort());
  expect(ifindex(east, "lsvx")).toBe(port);
  outs = await segment.update(e.id, outs, part(east, [west], { mtu: 1400 }));
  expect(floods(east)).toEqual([west.address]);
  expect(east.sh(["ip", "link", "show", "dev", "lsbr"])).toContain("mtu 1400");
  expect(east.sh(["ip", "link", "show", "dev", "lsvx"])).toContain("mtu 1400");
  const alone = part(east, [], { vxlan: undefined });
  expect(await segment.diff(e.id, outs, alone)).toMatchObject({ changes: true, replaces: [] });
  outs = await segment.update(e.id, outs, alone);
  expect(east.sh(["ip", "link", "show", "dev", "lsvx"], { allowFailure: true })).toBe("");
  expect(ifindex(east, "lsbr")).toBe(bridge);
  outs = await segment.update(e.id, outs, wanted);
  expect(ping(east, "10.77.0.2")).toContain(" 1 received");
  const renumbered = part(east, [west], { vxlan: { ...(wanted.vxlan as Props), vni: 4244 } });
  expect(await segment.diff(e.id, outs, renumbered)).toMatchObject({ changes: true, replaces: [] });
  outs = await segment.update(e.id, outs, renumbered);
  expect(east.sh(["ip", "-d", "link", "show", "dev", "lsvx"])).toContain("vxlan id 4244 ");
  expect(await segment.read(e.id, outs)).toEqual({ id: e.id, props: outs });
  expect(ifindex(east, "lsbr")).toBe(bridge);

  await made.destroy();
  expect([east, west, north].map(hostSnapshot)).toEqual(before);
  expect(records(east)).toBe("");
});

test("bad input names the property and nothing runs on the host", async () => {
  const before = hostSnapshot(east);
  const local = await segment.check(part(east, [east]));
  expect(local.failures).toEqual([expect.objectContaining({ property: "vxlan.remotes.0" })]);
  const hostile = await segment.check(part(east, [west], { name: "br; reboot" }));
  expect(hostile.failures).toEqual([expect.objectContaining({ property: "name" })]);
  expect(hostSnapshot(east)).toEqual(before);
});

test("a create interrupted after any command is finished by a plain retry; a device of the port's name that is not its own is refused, leaving nothing", async () => {
  const before = hostSnapshot(east);
  const wanted = part(east, [west]);
  let interrupted = 0;
  for (let commands = 1; ; commands++) {
    haltAfterCommands(commands);
    const first = await segment.create(wanted).then(
      (done) => done,
      () => undefined,
    );
    haltAfterCommands(0);
    closeAllHosts();
    if (first) {
      await segment.delete(first.id, first.outs);
      break;
    }
    interrupted++;
    const again = await segment.create(wanted);
    expect(await segment.read(again.id, again.outs)).toEqual({ id: again.id, props: again.outs });
    expect(east.sh(["ip", "-d", "link", "show", "dev", "lsvx"])).toContain("master lsbr");
    await segment.delete(again.id, again.outs);
    expect(hostSnapshot(east)).toEqual(before);
    expect(records(east)).toBe("");
  }
  expect(interrupted).toBeGreaterThan(5);

  byHand(east, ["ip", "link", "add", "lsvx", "type", "vxlan", "id", "4250", "local", east.address, "dstport", "4789", "dev", "eth0"]);
  await expect(segment.create(wanted)).rejects.toThrow(/interface "lsvx".*already exists/);
  byHand(east, ["ip", "link", "del", "dev", "lsvx"]);
  expect(hostSnapshot(east)).toEqual(before);
  expect(records(east)).toBe("");
});

test("a stack's Bridge and Vxlan taken over by its LabSegment in place: the old Vxlan's delete leaves the port", async () => {
  const before = hostSnapshot(east);
  const bridgeKind = engine("Bridge");
  const vxlanKind = engine("Vxlan");
  const connection = east.connection();
  // As the release before LabSegment made a segment's part: a Bridge, and a Vxlan on it, each with its owner.
  const oldBridge = await bridgeKind.create({ connection, name: "lsbr", mtu: 1450, owner: "b".repeat(16) + "@lab/stack" });
  const oldVxlan = await vxlanKind.create({
    connection,
    name: "lsvx",
    vni: 4242,
    local: east.address,
    remotes: [west.address],
    device: "eth0",
    master: "lsbr",
    mtu: 1450,
    owner: "c".repeat(16) + "@lab/stack",
  });
  const [bridge, port] = [ifindex(east, "lsbr"), ifindex(east, "lsvx")];
  const news = part(east, [west]);
  expect(await segment.diff(oldBridge.id, oldBridge.outs, news)).toMatchObject({ changes: true, replaces: [] });
  const outs = await segment.update(oldBridge.id, oldBridge.outs, news);
  // The engine deletes the old Vxlan after the update, with this release's code.
  await vxlanKind.delete(oldVxlan.id, oldVxlan.outs);
  closeAllHosts();
  expect([ifindex(east, "lsbr"), ifindex(east, "lsvx")]).toEqual([bridge, port]);
  expect(floods(east)).toEqual([west.address]);
  expect(await segment.read(oldBridge.id, outs)).toEqual({ id: oldBridge.id, props: outs });
  // The sweep knows both by the state: the bridge's record (still the Bridge's holder token) and the port's new owner.
  const target = hostFor(connectionSchema.parse(connection));
  expect(await findOrphans(target, "lab/stack", [stateResource("LabSegment", oldBridge.id, outs)])).toEqual([]);
  await segment.delete(oldBridge.id, outs);
  expect(hostSnapshot(east)).toEqual(before);
  expect(records(east)).toBe("");
});

test("what the segment does not own stays: a link that took the port's name is refused; a port read off its bridge is still its own", async () => {
  const before = hostSnapshot(east);
  const alone = await made.create(segment, part(east, [], { vxlan: undefined }));
  byHand(east, ["ip", "link", "add", "lsvx", "type", "veth", "peer", "name", "lsvx-peer"]);
  await expect(segment.update(alone.id, alone.outs, part(east, [west]))).rejects.toThrow(
    /interface "lsvx" is a veth link: the segment's VXLAN port cannot be it/,
  );
  expect(east.sh(["ip", "link", "show", "dev", "lsvx"])).toContain("lsvx@lsvx-peer");
  byHand(east, ["ip", "link", "del", "dev", "lsvx"]);
  const outs = await segment.update(alone.id, alone.outs, part(east, [west]));
  // Off its bridge by hand, then refreshed: state has no `vxlan`, but knows the device, which goes when the port is no longer wanted.
  byHand(east, ["ip", "link", "set", "dev", "lsvx", "nomaster"]);
  const refreshed = (await segment.read(alone.id, outs)).props;
  expect([refreshed.vxlan, refreshed.port]).toEqual([undefined, "lsvx"]);
  await segment.update(alone.id, refreshed, part(east, [], { vxlan: undefined }));
  expect(east.sh(["ip", "link", "show", "dev", "lsvx"], { allowFailure: true })).toBe("");
  await made.destroy();
  expect(hostSnapshot(east)).toEqual(before);
  expect(records(east)).toBe("");
});

test("sweep knows a LabSegment in state by its bridge's holder and its port's owner; forgotten, they are found and removed", async () => {
  const before = hostSnapshot(east);
  const e = await segment.create(part(east, [west]));
  const target = hostFor(connectionSchema.parse(east.connection()));
  expect(await findOrphans(target, "lab/stack", [stateResource("LabSegment", e.id, e.outs)])).toEqual([]);
  const orphans = await findOrphans(target, "lab/stack", []);
  expect(orphans.map((o) => `${o.kind.name} ${o.id}`).sort()).toEqual(["Bridge lsbr", "Vxlan /lsvx"]);
  expect((await removeOrphans(target, orphans)).filter((r) => r.error)).toEqual([]);
  closeAllHosts();
  expect(hostSnapshot(east)).toEqual(before);
  expect(records(east)).toBe("");
});
