/**
 * One LAN over three throwaway hosts: per host a bridge and ONE Vxlan device whose `remotes` are the
 * other hosts (head-end replication), never a tunnel per pair. It grows from two hosts to three by
 * in-place updates of the first two while a ping between them runs on (loss printed, at most 1 in 100);
 * every node pings every other; a flood entry deleted or added by hand, or the device remade by hand
 * with a fixed remote, is drift that update repairs; a two-host end made with a fixed remote (as Labs
 * made it before) becomes a segment's port in place; destroy leaves every host as it was.
 */
import { closeAllHosts } from "../../provider";
import type { Props } from "../../provider/kind";
import { hostSnapshot } from "../harness/hostSnapshot";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { engine, recorder } from "../harness/engine";

let lab: TestLab;

beforeAll(async () => {
  lab = await TestLab.create(3);
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
});

const namespace = engine("Namespace");
const bridge = engine("Bridge");
const veth = engine("Veth");
const address = engine("Address");
const vxlan = engine("Vxlan");

const VNI = 4343;
const nodeAddress = (i: number) => `10.210.0.${i + 1}`;

/**
 * Whether a ping from the host's "lan" namespace gets an answer within three tries (a neighbour entry
 * that failed a moment ago may need more than one); `size` with don't-fragment proves the MTU.
 */
function pings(host: TestHost, to: string, size?: number): boolean {
  const sized = size ? ["-M", "do", "-s", String(size)] : [];
  const once = () =>
    host
      .sh(["ip", "netns", "exec", "lan", "ping", "-n", "-c", "1", "-W", "2", ...sized, to], { allowFailure: true, timeoutMs: 15_000 })
      .includes(" 1 received");
  return once() || once() || once();
}

/** Every ordered pair of the hosts, as "from -> to" for readable failures. */
function reachable(hosts: TestHost[]): string[] {
  return hosts.flatMap((from) =>
    hosts
      .filter((to) => to !== from)
      .map((to) => `${from.index} -> ${to.index}: ${pings(from, nodeAddress(to.index)) ? "ok" : "no answer"}`),
  );
}

const floodRemotes = (host: TestHost): string[] =>
  JSON.parse(host.sh(["bridge", "-j", "fdb", "show", "dev", "vx-lan"]))
    .filter((e: { mac: string }) => e.mac === "00:00:00:00:00:00")
    .map((e: { dst: string }) => e.dst)
    .sort();

test("a LAN over three hosts: one VXLAN device per host floods to the others; grown in place, drift repaired, no leftovers", async () => {
  const hosts = lab.hosts;
  const [a, b, c] = hosts;
  const before = hosts.map(hostSnapshot);
  const made = recorder();
  const others = (host: TestHost, among: TestHost[]) => among.filter((h) => h !== host).map((h) => h.address);

  /** The host's part of the LAN: a bridge, its VXLAN port, and a node (namespace) on it with an address. */
  async function join(host: TestHost, remotes: string[], remote?: string) {
    const connection = host.connection();
    await made.create(namespace, { connection, name: "lan" });
    await made.create(bridge, { connection, name: "br-lan" });
    const peers = remote ? { remote } : { remotes };
    const port = await made.create(vxlan, {
      connection,
      name: "vx-lan",
      vni: VNI,
      local: host.address,
      ...peers,
      device: "eth0",
      master: "br-lan",
    });
    await made.create(veth, {
      connection,
      name: "eth0",
      namespace: "lan",
      mtu: port.outs.mtu,
      peer: { name: "lan-port", master: "br-lan" },
    });
    await made.create(address, { connection, namespace: "lan", device: "eth0", address: `${nodeAddress(host.index)}/24` });
    return port;
  }

  // Two hosts first, with the same mechanism as any number; A's end a cable between two hosts: a fixed remote.
  const cableA = await join(a, [], b.address);
  const portB = await join(b, others(b, [a, b]));
  expect(cableA.outs).toMatchObject({ remote: b.address, mtu: 1450, master: "br-lan" });
  expect(portB.outs).toMatchObject({ remotes: [a.address], mtu: 1450, master: "br-lan" });
  const info = JSON.parse(b.sh(["ip", "-d", "-j", "link", "show", "vx-lan"]))[0].linkinfo.info_data;
  expect(info).toMatchObject({ id: VNI, local: b.address, port: 4789 });
  expect(info.remote).toBeUndefined();
  expect(reachable([a, b])).toEqual([`${a.index} -> ${b.index}: ok`, `${b.index} -> ${a.index}: ok`]);

  // In place, no device made again: A's cable becomes a port flooding to B; then the third host, which
  // the first two gain as a remote. A ping from A to B at 10 a second runs throughout.
  const inPlace = async (port: { id: string; outs: Props; news: Props }, host: TestHost, remotes: string[]) => {
    const news = { ...port.news, remote: undefined, remotes };
    expect(await vxlan.diff(port.id, port.outs, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    const ifindex = JSON.parse(host.sh(["ip", "-j", "link", "show", "vx-lan"]))[0].ifindex;
    const outs = await vxlan.update(port.id, port.outs, news);
    expect(JSON.parse(host.sh(["ip", "-j", "link", "show", "vx-lan"]))[0].ifindex).toBe(ifindex);
    return { id: port.id, outs, news: await vxlan.checked(news) };
  };
  const ping = a.spawn(["ip", "netns", "exec", "lan", "ping", "-n", "-c", "100", "-i", "0.1", "-W", "1", nodeAddress(b.index)]);
  let pinged = "";
  ping.stdout!.on("data", (chunk) => (pinged += chunk));
  const pingDone = new Promise((resolve) => ping.once("exit", resolve));
  const portA = await inPlace(cableA, a, [b.address]);
  expect(portA.outs.remote).toBeUndefined();
  expect(floodRemotes(a)).toEqual([b.address]);
  const wideA = await inPlace(portA, a, others(a, hosts));
  const wideB = await inPlace(portB, b, others(b, hosts));
  const portC = await join(c, others(c, hosts));
  await pingDone;
  const loss = /(\d+) received/.exec(pinged);
  console.log(
    `ping A -> B while A's cable became a port and the LAN grew to a third host: ${pinged
      .split("\n")
      .filter((l) => /transmitted/.test(l))
      .join("")}`,
  );
  expect(100 - Number(loss?.[1] ?? 0)).toBeLessThanOrEqual(1);
  for (const host of hosts) {
    expect(floodRemotes(host)).toEqual(others(host, hosts).sort());
    expect(JSON.parse(host.sh(["ip", "-j", "link", "show", "type", "vxlan"]))).toHaveLength(1);
  }
  expect(reachable(hosts).filter((line) => !line.endsWith("ok"))).toEqual([]);
  // A full 1450-byte frame each way: the MTU leaves room for the encapsulation.
  expect(pings(c, nodeAddress(a.index), 1450 - 28)).toBe(true);

  // A flood entry deleted by hand: A's broadcasts (ARP) no longer reach C. Read sees it; update repairs it.
  // Neither side may know the other's MAC meanwhile, or a unicast probe from C would teach A its way.
  a.sh(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vx-lan", "dst", c.address]);
  for (const host of [a, c]) host.sh(["ip", "-n", "lan", "neigh", "flush", "all"]);
  expect(pings(a, nodeAddress(c.index))).toBe(false);
  const missing = await vxlan.read(wideA.id, wideA.outs);
  expect(missing.props.remotes).toEqual([b.address]);
  expect(await vxlan.diff(wideA.id, missing.props, wideA.news)).toMatchObject({ changes: true, replaces: [] });
  const repaired = await vxlan.update(wideA.id, missing.props, wideA.news);
  expect(repaired.remotes).toEqual(others(a, hosts).sort());
  expect(floodRemotes(a)).toEqual(others(a, hosts).sort());
  expect(pings(a, nodeAddress(c.index))).toBe(true);
  expect(await vxlan.diff(wideA.id, (await vxlan.read(wideA.id, repaired)).props, wideA.news)).toMatchObject({ changes: false });

  // An entry added by hand that the program does not ask for is drift too, and update removes it.
  const narrowB = { ...wideB.news, remotes: [a.address] };
  const narrowed = await vxlan.update(wideB.id, wideB.outs, narrowB);
  expect(floodRemotes(b)).toEqual([a.address]);
  b.sh(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx-lan", "dst", c.address]);
  const extra = await vxlan.read(wideB.id, narrowed);
  expect(extra.props.remotes).toEqual([a.address, c.address].sort());
  expect(await vxlan.diff(wideB.id, extra.props, narrowB)).toMatchObject({ changes: true, replaces: [] });
  await vxlan.update(wideB.id, extra.props, narrowB);
  expect(floodRemotes(b)).toEqual([a.address]);
  // One with another port is someone else's (our `fdb del … dst` would not match it): no drift, left alone.
  const foreignEntry = ["00:00:00:00:00:00", "dev", "vx-lan", "dst", c.address, "port", "5555"];
  b.sh(["bridge", "fdb", "append", ...foreignEntry]);
  const foreign = await vxlan.read(wideB.id, narrowed);
  expect(foreign.props.remotes).toEqual([a.address]);
  expect(await vxlan.diff(wideB.id, foreign.props, narrowB)).toMatchObject({ changes: false });
  b.sh(["bridge", "fdb", "del", ...foreignEntry]);
  await vxlan.update(wideB.id, narrowed, wideB.news);
  expect(reachable(hosts).filter((line) => !line.endsWith("ok"))).toEqual([]);

  // Remade by hand on C as a cable to A (a fixed remote, which the kernel also lists as a flood entry;
  // with no `dev`, one like ours) plus a flood entry to B: its flood entries read as asked, but the fixed
  // remote is drift, and update clears it in place (the entry to A, which goes with it, appended again).
  const remoteOf = () => JSON.parse(c.sh(["ip", "-d", "-j", "link", "show", "vx-lan"]))[0].linkinfo.info_data.remote;
  c.sh(["ip", "link", "del", "vx-lan"]);
  c.sh(["ip", "link", "add", "vx-lan", "type", "vxlan", "id", String(VNI), "local", c.address, "remote", a.address, "dstport", "4789"]);
  c.sh(["ip", "link", "set", "vx-lan", "master", "br-lan", "mtu", "1450", "up"]);
  c.sh(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vx-lan", "dst", b.address]);
  const cable = await vxlan.read(portC.id, portC.outs);
  expect(cable.props).toMatchObject({ remote: a.address, remotes: others(c, hosts).sort() });
  expect(await vxlan.diff(portC.id, cable.props, portC.news)).toMatchObject({ changes: true, replaces: [] });
  const remade = await vxlan.update(portC.id, cable.props, portC.news);
  expect(remoteOf()).toBeUndefined();
  expect(remade.remote).toBeUndefined();
  expect(floodRemotes(c)).toEqual(others(c, hosts).sort());
  expect(await vxlan.diff(portC.id, (await vxlan.read(portC.id, remade)).props, portC.news)).toMatchObject({ changes: false });
  expect(reachable(hosts).filter((line) => !line.endsWith("ok"))).toEqual([]);

  // Deleted by hand on C: read says gone (refresh would recreate it).
  c.sh(["ip", "link", "del", "vx-lan"]);
  expect(await vxlan.read(portC.id, portC.outs)).toEqual({ id: "", props: {} });

  await made.destroy();
  expect(hosts.map(hostSnapshot)).toEqual(before);
  for (const host of hosts) expect(host.sh(["ip", "-d", "link", "show", "type", "vxlan"])).toBe("");
});
