/**
 * Labs that span hosts, on two throwaway hosts: a VXLAN cable between namespaces on different
 * hosts carries real traffic (ping and a TCP fetch of more than one full frame), drift is read,
 * a duplicate VNI is explained, a device in a namespace may share its name with one in the host's own
 * namespace, netem's delay is measured, and destroy leaves both hosts as before.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeAllHosts } from "../../provider";
import { connection as connectionSchema } from "../../provider/connection";
import { AlreadyExistsError } from "../../provider/errors";
import type { Host } from "../../provider/host";
import { vxlanKind } from "../../provider/kinds/vxlan";
import { hostFor } from "../../provider/ssh/pool";
import { engine, recorder } from "../harness/engine";
import { hostSnapshot } from "../harness/hostSnapshot";
import { TestHost, TestLab } from "../harness/throwawayHosts";
import { kernelHasNetem } from "../harness/kernel";

let lab: TestLab;
let a: TestHost;
let b: TestHost;
let webRoot: string;

beforeAll(async () => {
  lab = await TestLab.create(2);
  [a, b] = lab.hosts;
  webRoot = mkdtempSync(join(tmpdir(), "pnt-web-"));
});

afterAll(() => {
  closeAllHosts();
  lab?.destroy();
  if (webRoot) rmSync(webRoot, { recursive: true, force: true });
});

const namespace = engine("Namespace");
const bridge = engine("Bridge");
const veth = engine("Veth");
const address = engine("Address");
const vxlan = engine("Vxlan");
const netem = engine("Netem");

const inNs = (host: TestHost, argv: string[], options?: { allowFailure?: boolean; timeoutMs?: number }) =>
  host.sh(["ip", "netns", "exec", "lab", ...argv], options);

/** Round-trip times in ms of `count` pings from the host's "lab" namespace. */
function pingTimes(host: TestHost, to: string, count: number): number[] {
  const out = inNs(host, ["ping", "-n", "-c", String(count), "-i", "0.2", "-W", "2", to]);
  return [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];

async function waitForPort(host: TestHost, address: string, port: number): Promise<void> {
  const probe = `import socket; socket.create_connection(("${address}", ${port}), timeout=1).close()`;
  for (let i = 0; i < 50; i++) {
    if (inNs(host, ["python3", "-c", `${probe}; print("up")`], { allowFailure: true }).includes("up")) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${address}:${port}`);
}

describe("Vxlan across two hosts", () => {
  test("a cable between namespaces on two hosts carries ping and TCP; drift, EEXIST and updates; destroy leaves both hosts as before", async () => {
    const before = [hostSnapshot(a), hostSnapshot(b)];
    const onA = recorder();
    const onB = recorder();
    const connA = a.connection();
    const connB = b.connection();

    // Host A: the vxlan device on a bridge in the host's namespace, a veth into the namespace.
    await onA.create(namespace, { connection: connA, name: "lab" });
    await onA.create(bridge, { connection: connA, name: "br-vx" });
    const cableA = await onA.create(vxlan, {
      connection: connA,
      name: "vx-a",
      vni: 4242,
      local: a.address,
      remote: b.address,
      device: "eth0",
      master: "br-vx",
    });
    expect(cableA.id).toBe("/vx-a");
    expect(cableA.outs).toMatchObject({
      vni: 4242,
      local: a.address,
      remote: b.address,
      dstport: 4789,
      mtu: 1450,
      up: true,
      master: "br-vx",
    });
    await onA.create(veth, {
      connection: connA,
      name: "eth-lab",
      namespace: "lab",
      mtu: cableA.outs.mtu,
      peer: { name: "eth-lab-br", master: "br-vx" },
    });
    await onA.create(address, { connection: connA, namespace: "lab", device: "eth-lab", address: "10.200.0.1/24" });

    // Host B: the vxlan device straight in the namespace; its socket stays in the host's.
    await onB.create(namespace, { connection: connB, name: "lab" });
    const cableB = await onB.create(vxlan, {
      connection: connB,
      name: "vx-b",
      namespace: "lab",
      vni: 4242,
      local: b.address,
      remote: a.address,
      device: "eth0",
    });
    expect(cableB.id).toBe("lab/vx-b");
    expect(b.sh(["ip", "link", "show", "vx-b"], { allowFailure: true })).toBe("");
    expect(JSON.parse(b.sh(["ip", "-n", "lab", "-d", "-j", "link", "show", "vx-b"]))[0]).toMatchObject({
      mtu: 1450,
      linkinfo: { info_kind: "vxlan", info_data: { id: 4242, port: 4789, local: b.address, remote: a.address } },
    });
    await onB.create(address, { connection: connB, namespace: "lab", device: "vx-b", address: "10.200.0.2/24" });

    expect(pingTimes(a, "10.200.0.2", 3)).toHaveLength(3);
    // More than one full frame each way: only works when the MTU leaves room for the encapsulation.
    writeFileSync(join(webRoot, "blob.txt"), "vxlan ".repeat(50_000));
    b.spawn(["ip", "netns", "exec", "lab", "python3", "-m", "http.server", "--bind", "10.200.0.2", "--directory", webRoot, "8080"]);
    await waitForPort(a, "10.200.0.2", 8080);
    const fetched = inNs(a, [
      "python3",
      "-c",
      "import urllib.request; print(len(urllib.request.urlopen('http://10.200.0.2:8080/blob.txt', timeout=10).read()))",
    ]);
    expect(fetched.trim()).toBe("300000");

    // The same VNI and port once more on host B, even for another namespace: the kernel says EEXIST.
    await expect(
      vxlan.create({ connection: connB, name: "vx-dup", vni: 4242, local: b.address, remote: a.address, device: "eth0" }),
    ).rejects.toThrow(/VNI 4242 with dstport 4789 is already used by another vxlan device on this host/);
    expect(b.sh(["ip", "link", "show", "vx-dup"], { allowFailure: true })).toBe("");
    const otherPort = await vxlan.create({
      connection: connB,
      name: "vx-port",
      vni: 4242,
      dstport: 14789,
      local: b.address,
      remote: a.address,
      device: "eth0",
    });
    await vxlan.delete(otherPort.id, otherPort.outs);

    // In place: remote (lanOverThreeHosts.test.ts applies one), mtu, master, up. Leaving mtu and master
    // unset goes back to the defaults.
    const news = cableA.news;
    expect((await vxlan.diff(cableA.id, cableA.outs, { ...news, vni: 4243 })).replaces).toEqual(["vni"]);
    expect(await vxlan.diff(cableA.id, cableA.outs, { ...news, remote: "198.18.0.99" })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(await vxlan.diff(cableA.id, cableA.outs, { ...news, mtu: 1400 })).toMatchObject({ changes: true, replaces: [] });
    const lowered = await vxlan.update(cableA.id, cableA.outs, { ...news, mtu: 1400, up: false });
    expect(lowered).toMatchObject({ mtu: 1400, up: false, master: "br-vx" });
    const { master: _master, mtu: _mtu, ...unset } = news;
    const restored = await vxlan.update(cableA.id, lowered, unset);
    expect(restored).toMatchObject({ mtu: 1450, up: true });
    expect(restored.master).toBeUndefined();
    expect(JSON.parse(a.sh(["ip", "-j", "link", "show", "vx-a"]))[0].master).toBeUndefined();
    const back = await vxlan.update(cableA.id, restored, news);
    expect(back).toMatchObject({ mtu: 1450, master: "br-vx", up: true });
    expect(pingTimes(a, "10.200.0.2", 1)).toHaveLength(1);

    // Deleted by hand: read says gone, delete still succeeds.
    b.sh(["ip", "-n", "lab", "link", "del", "vx-b"]);
    expect(await vxlan.read(cableB.id, cableB.outs)).toEqual({ id: "", props: {} });
    await vxlan.delete(cableB.id, cableB.outs);

    await onB.destroy();
    await onA.destroy();
    expect([hostSnapshot(a), hostSnapshot(b)]).toEqual(before);
  });

  test("adopting needs the same cable; a create whose bridge is missing leaves no device behind", async () => {
    const connection = a.connection();
    a.sh([
      "ip",
      "link",
      "add",
      "vx-hand",
      "type",
      "vxlan",
      "id",
      "77",
      "local",
      a.address,
      "remote",
      b.address,
      "dstport",
      "4789",
      "dev",
      "eth0",
    ]);
    const inputs = { connection, name: "vx-hand", vni: 77, local: a.address, remote: b.address, device: "eth0" };
    await expect(vxlan.create(inputs)).rejects.toThrow(/interface "vx-hand" already exists.*adopt: true/s);
    await expect(vxlan.create({ ...inputs, vni: 78, adopt: true })).rejects.toThrow(/cannot adopt "vx-hand"/);
    const adopted = await vxlan.create({ ...inputs, adopt: true });
    expect(adopted.outs).toMatchObject({ vni: 77, mtu: 1450, up: true });
    await vxlan.delete(adopted.id, adopted.outs);
    expect(a.sh(["ip", "link", "show", "vx-hand"], { allowFailure: true })).toBe("");

    const err = await vxlan.create({ ...inputs, name: "vx-half", master: "no-such-br" }).catch((e) => e);
    expect(String(err)).toMatch(/no-such-br|Cannot find device/);
    expect(a.sh(["ip", "-d", "link", "show", "type", "vxlan"])).toBe("");
    await expect(vxlan.create({ ...inputs, name: "vx-x", device: "no-such-dev" })).rejects.toThrow(
      /underlay device "no-such-dev" does not exist/,
    );
  });

  // Kernel 6.1 (Debian 12's) looked the name of `ip link add name N netns NS` up in the host's own
  // namespace: "File exists" when the host had a device N, although N was to live in NS.
  test("a device in a namespace, named like a device in the host's own namespace: made, read, updated and deleted there; the host's device untouched", async () => {
    const before = hostSnapshot(a);
    const connection = a.connection();
    const onA = recorder();
    type Link = { ifname: string; mtu: number; linkinfo?: { info_kind: string } };
    const links = (ns?: string): Link[] => JSON.parse(a.sh(["ip", ...(ns ? ["-n", ns] : []), "-d", "-j", "link", "show"]));
    a.sh(["ip", "link", "add", "vx0", "type", "bridge"]);
    try {
      const hostVx0 = links().find((l) => l.ifname === "vx0")!;
      await onA.create(namespace, { connection, name: "lab" });
      const made = await onA.create(vxlan, {
        connection,
        name: "vx0",
        namespace: "lab",
        vni: 4343,
        local: a.address,
        remote: b.address,
        device: "eth0",
      });
      expect(made.id).toBe("lab/vx0");
      expect(made.outs).toMatchObject({ vni: 4343, local: a.address, remote: b.address, mtu: 1450, up: true });
      // Made under its own name, no other device left in the namespace.
      expect(links("lab").map((l) => [l.ifname, l.linkinfo?.info_kind])).toEqual([
        ["lo", undefined],
        ["vx0", "vxlan"],
      ]);

      expect(await vxlan.read(made.id, made.outs)).toMatchObject({ id: made.id, props: { vni: 4343, mtu: 1450, up: true } });
      expect(await vxlan.update(made.id, made.outs, { ...made.news, mtu: 1400 })).toMatchObject({ mtu: 1400 });
      expect(links("lab").find((l) => l.ifname === "vx0")?.mtu).toBe(1400);
      expect(links().find((l) => l.ifname === "vx0")).toEqual(hostVx0);

      await onA.destroy();
      expect(links().find((l) => l.ifname === "vx0")).toEqual(hostVx0);
    } finally {
      await onA.destroy();
      a.sh(["ip", "link", "del", "vx0"], { allowFailure: true });
    }
    expect(hostSnapshot(a)).toEqual(before);
  });

  // Before a create in a namespace was one script, a connection lost between the add and the rename left
  // the device under its provisional name, holding the VNI and port: every later create failed on EEXIST.
  test("a provisional device left by an unfinished create gives way to the next create; a name taken in the namespace meanwhile leaves no device behind", async () => {
    const before = hostSnapshot(a);
    const connection = a.connection();
    const onA = recorder();
    const vxlanNames = () =>
      (JSON.parse(a.sh(["ip", "-n", "lab", "-j", "link", "show", "type", "vxlan"])) as { ifname: string }[]).map((l) => l.ifname).sort();
    const plant = (name: string, vni: number) =>
      a.sh([
        "ip",
        "link",
        "add",
        "name",
        name,
        "netns",
        "lab",
        "type",
        "vxlan",
        "id",
        String(vni),
        "local",
        a.address,
        "remote",
        b.address,
        "dstport",
        "4789",
        "dev",
        "eth0",
      ]);
    const spec = { connection, namespace: "lab", local: a.address, remote: b.address, device: "eth0" };
    try {
      await onA.create(namespace, { connection, name: "lab" });
      plant("pnt-vx-0badcafe", 4545);
      // Another VNI is in nobody's way and not this create's to remove.
      plant("pnt-vx-1badcafe", 4546);
      const made = await onA.create(vxlan, { ...spec, name: "vx0", vni: 4545 });
      expect(made.outs).toMatchObject({ vni: 4545, mtu: 1450, up: true });
      expect(vxlanNames()).toEqual(["pnt-vx-1badcafe", "vx0"]);

      // The name is taken in the namespace after create looked, just before its script runs.
      const pooled = hostFor(connectionSchema.parse(connection));
      const racing: Host = {
        label: pooled.label,
        run(argv, options) {
          if (argv[0] === "sh") a.sh(["ip", "-n", "lab", "link", "add", "vx-taken", "type", "bridge"]);
          return pooled.run(argv, options);
        },
      };
      const err = await vxlanKind.create(racing, vxlanKind.inputs.parse({ ...spec, name: "vx-taken", vni: 4547 }), false).catch((e) => e);
      expect(err).toBeInstanceOf(AlreadyExistsError);
      expect(err.message).toMatch(/interface "vx-taken" in namespace "lab" already exists/);
      // The device the script made under its provisional name is gone again, and with it its hold on VNI 4547.
      expect(vxlanNames()).toEqual(["pnt-vx-1badcafe", "vx0"]);
      await onA.create(vxlan, { ...spec, name: "vx1", vni: 4547 });
      expect(vxlanNames()).toEqual(["pnt-vx-1badcafe", "vx0", "vx1"]);
    } finally {
      // Deleting the namespace takes whatever is left in it.
      await onA.destroy();
    }
    expect(hostSnapshot(a)).toEqual(before);
  });
});

describe("Netem", () => {
  const root = (host: TestHost, ns: string | undefined, device: string) =>
    JSON.parse(host.sh([...(ns ? ["ip", "netns", "exec", ns] : []), "tc", "-j", "qdisc", "show", "dev", device]) || "[]").find(
      (q: { root?: boolean }) => q.root,
    );

  // This project's machines run a kernel without netem: the title says which proof ran.
  const title = kernelHasNetem
    ? "20 ms of delay shows in the RTT; a hand-made tc qdisc change is drift that update repairs; delete restores the default qdisc"
    : "on a kernel without netem, create fails naming CONFIG_NET_SCH_NETEM and changes nothing; a foreign root qdisc is not taken over";
  test(title, async () => {
    const before = hostSnapshot(a);
    const onA = recorder();
    const connection = a.connection();
    await onA.create(namespace, { connection, name: "lab" });
    await onA.create(veth, { connection, name: "eth-lab", namespace: "lab", peer: { name: "eth-lab-h" } });
    await onA.create(address, { connection, namespace: "lab", device: "eth-lab", address: "10.201.0.1/24" });
    await onA.create(address, { connection, device: "eth-lab-h", address: "10.201.0.2/24" });
    expect(Math.max(...pingTimes(a, "10.201.0.2", 3))).toBeLessThan(10);

    // Someone's own root qdisc is not taken over without adopt; a missing interface is named.
    a.sh(["tc", "qdisc", "add", "dev", "eth-lab-h", "root", "tbf", "rate", "1gbit", "burst", "32kbit", "latency", "50ms"]);
    await expect(netem.create({ connection, device: "eth-lab-h", delayMs: 20 })).rejects.toThrow(
      /a tbf root qdisc on "eth-lab-h" already exists.*adopt/s,
    );
    expect(root(a, undefined, "eth-lab-h").kind).toBe("tbf");
    a.sh(["tc", "qdisc", "del", "dev", "eth-lab-h", "root"]);
    await expect(netem.create({ connection, namespace: "lab", device: "nope", delayMs: 20 })).rejects.toThrow(
      /interface "nope" does not exist in namespace "lab"/,
    );

    const inputs = { connection, namespace: "lab", device: "eth-lab", delayMs: 20 };
    const made = await netem.create(inputs).catch((err: Error) => err);
    expect(made instanceof Error).toBe(!kernelHasNetem);
    if (made instanceof Error) {
      // A kernel built without netem (this project's CI machine): the error says so, nothing changed.
      expect(made.message).toMatch(/this kernel has no netem qdisc \(CONFIG_NET_SCH_NETEM/);
      expect(root(a, "lab", "eth-lab")).toMatchObject({ kind: "noqueue", handle: "0:" });
    } else {
      const { id, outs, news } = made;
      expect(outs).toMatchObject({ delayMs: 20, jitterMs: 0, lossPercent: 0, rateKbit: 0, limit: 33334 });
      pingTimes(a, "10.201.0.2", 1); // the neighbour entry may need refreshing, which takes its own delayed round trip
      const rtts = pingTimes(a, "10.201.0.2", 5);
      expect(rtts).toHaveLength(5);
      expect(Math.min(...rtts)).toBeGreaterThanOrEqual(20);
      expect(median(rtts)).toBeLessThan(35);

      inNs(a, ["tc", "qdisc", "change", "dev", "eth-lab", "root", "netem", "delay", "50ms"]);
      const drifted = await netem.read(id, outs);
      expect(drifted.props).toMatchObject({ delayMs: 50 });
      expect(await netem.diff(id, drifted.props, news)).toMatchObject({ changes: true, replaces: [] });
      const repaired = await netem.update(id, drifted.props, inputs);
      expect(repaired).toMatchObject({ delayMs: 20 });
      expect(root(a, "lab", "eth-lab").options.delay.delay).toBeCloseTo(0.02, 6);
      expect(await netem.diff(id, repaired, news)).toMatchObject({ changes: false });

      // replace resets what it is not given: loss set, then left unset, is gone again.
      const lossy = await netem.update(id, repaired, { ...inputs, lossPercent: 12.5, rateKbit: 10000, limit: 5000 });
      expect(lossy).toMatchObject({ lossPercent: 12.5, rateKbit: 10000, limit: 5000, delayMs: 20 });
      expect(root(a, "lab", "eth-lab").options).toMatchObject({
        limit: 5000,
        "loss-random": { loss: expect.closeTo(0.125, 6) },
        rate: { rate: 1250000 },
      });
      const plain = await netem.update(id, lossy, inputs);
      expect(plain).toMatchObject({ lossPercent: 0, rateKbit: 0, limit: 33334 });
      expect(root(a, "lab", "eth-lab").options["loss-random"]).toBeUndefined();

      await netem.delete(id, plain);
      expect(root(a, "lab", "eth-lab")).toMatchObject({ kind: "noqueue", handle: "0:" });
      expect(await netem.read(id, plain)).toEqual({ id: "", props: {} });
      await netem.delete(id, plain);
      expect(Math.max(...pingTimes(a, "10.201.0.2", 3))).toBeLessThan(10);
    }

    await onA.destroy();
    expect(hostSnapshot(a)).toEqual(before);
  });
});
