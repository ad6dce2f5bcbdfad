/**
 * Every resource kind on a real host: create → drift made out of band → read reports it →
 * update or replace → delete (twice: the second finds nothing and succeeds).
 */
import { closeAllHosts } from "../../provider";
import { engine } from "../harness/engine";
import type { TestHost } from "../harness/throwawayHosts";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

const ipJson = (argv: string[]) => JSON.parse(host.sh(["ip", "-j", ...argv]) || "[]");
const link = (ns: string | undefined, name: string) => ipJson([...(ns ? ["-n", ns] : []), "-d", "link", "show", "dev", name])[0];
const netnsList = () => ipJson(["netns", "list"]).map((n: { name: string }) => n.name);

describe("Namespace", () => {
  const ns = engine("Namespace");

  test("create, refuse a second create, adopt, drift, update, delete", async () => {
    const { id, outs, news } = await ns.create({ connection, name: "red" });
    expect(id).toBe("red");
    expect(netnsList()).toContain("red");
    expect(link("red", "lo").flags).toContain("UP");
    expect(outs.loopbackUp).toBe(true);

    await expect(ns.create({ connection, name: "red" })).rejects.toThrow(/network namespace "red" already exists.*adopt: true/s);
    const adopted = await ns.create({ connection, name: "red", adopt: true });
    expect(adopted.id).toBe("red");

    host.sh(["ip", "-n", "red", "link", "set", "lo", "down"]);
    const read = await ns.read(id, outs);
    expect(read).toMatchObject({ id: "red", props: { loopbackUp: false } });
    expect(await ns.diff(id, read.props, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    const updated = await ns.update(id, read.props, news);
    expect(updated.loopbackUp).toBe(true);
    expect(link("red", "lo").flags).toContain("UP");
    expect(await ns.diff(id, updated, news)).toMatchObject({ changes: false });

    expect((await ns.diff(id, updated, { ...news, name: "red2" })).replaces).toEqual(["name"]);

    // The adopting resource holds the namespace too: it goes with the last holder.
    await ns.delete(id, updated);
    expect(netnsList()).toContain("red");
    await ns.delete(adopted.id, adopted.outs);
    expect(netnsList()).not.toContain("red");
    await ns.delete(id, updated);
    expect(await ns.read(id, updated)).toEqual({ id: "", props: {} });
  });
});

describe("Bridge, Veth, Address", () => {
  const ns = engine("Namespace");
  const bridge = engine("Bridge");
  const veth = engine("Veth");
  const address = engine("Address");

  beforeAll(async () => {
    await ns.create({ connection, name: "blue" });
  });

  test("Bridge: create, drift (down, mtu), update, delete", async () => {
    const { id, outs, news } = await bridge.create({ connection, name: "br-test", mtu: 1400 });
    expect(link(undefined, "br-test")).toMatchObject({ mtu: 1400, linkinfo: { info_kind: "bridge" } });
    expect(link(undefined, "br-test").flags).toContain("UP");

    host.sh(["ip", "link", "set", "br-test", "down", "mtu", "1300"]);
    const read = await bridge.read(id, outs);
    expect(read.props).toMatchObject({ up: false, mtu: 1300 });
    expect(await bridge.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
    const updated = await bridge.update(id, read.props, { ...news, mtu: 1450 });
    expect(updated).toMatchObject({ up: true, mtu: 1450 });
    expect(link(undefined, "br-test").mtu).toBe(1450);

    await bridge.delete(id, updated);
    expect(host.sh(["ip", "link", "show", "br-test"], { allowFailure: true })).toBe("");
    await bridge.delete(id, updated);
    expect((await bridge.read(id, updated)).id).toBe("");
  });

  test("Veth: both ends placed at once, peer enslaved; drift of state, mtu and master is read and repaired", async () => {
    const br = await bridge.create({ connection, name: "v-net-0" });
    const inputs = { connection, name: "veth-blue", namespace: "blue", peer: { name: "veth-blue-br", master: "v-net-0" } };
    const { id, outs, news } = await veth.create(inputs);
    expect(link("blue", "veth-blue").linkinfo.info_kind).toBe("veth");
    expect(link(undefined, "veth-blue-br").master).toBe("v-net-0");
    expect(outs).toMatchObject({ up: true, peer: { master: "v-net-0", up: true } });

    host.sh(["ip", "-n", "blue", "link", "set", "veth-blue", "down"]);
    host.sh(["ip", "link", "set", "veth-blue-br", "nomaster"]);
    const read = await veth.read(id, outs);
    expect(read.props).toMatchObject({ up: false, peer: { up: true } });
    expect((read.props.peer as { master?: string }).master).toBeUndefined();
    expect(await veth.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });

    const updated = await veth.update(id, read.props, { ...inputs, mtu: 1400 });
    expect(link("blue", "veth-blue")).toMatchObject({ mtu: 1400 });
    expect(link("blue", "veth-blue").flags).toContain("UP");
    expect(link(undefined, "veth-blue-br")).toMatchObject({ mtu: 1400, master: "v-net-0" });

    host.sh(["ip", "link", "set", "veth-blue-br", "mtu", "1500"]);
    const mtuDrift = await veth.read(id, updated);
    expect(await veth.diff(id, mtuDrift.props, { ...inputs, mtu: 1400 })).toMatchObject({ changes: true, replaces: [] });

    expect((await veth.diff(id, updated, { ...inputs, peer: { ...inputs.peer, name: "other" } })).replaces).toEqual(["peer"]);
    expect((await veth.diff(id, updated, { ...inputs, peer: { ...inputs.peer, master: "other-br" } })).replaces).toEqual([]);

    await veth.delete(id, updated);
    expect(host.sh(["ip", "link", "show", "veth-blue-br"], { allowFailure: true })).toBe("");
    expect((await veth.read(id, updated)).id).toBe("");
    await veth.delete(id, updated);
    await bridge.delete(br.id, br.outs);
  });

  // Kernel 6.1 looked the first-named end up in the host's own namespace, which has an eth0: "File exists".
  test("Veth: ends named like the host's own eth0 are made in their namespaces (peer in the host's, or in another namespace)", async () => {
    const hostEth0 = link(undefined, "eth0").ifindex;
    const orange = await ns.create({ connection, name: "orange" });
    const toHost = await veth.create({ connection, name: "eth0", namespace: "blue", peer: { name: "veth-eth0-p" } });
    const across = await veth.create({ connection, name: "eth0", namespace: "orange", peer: { name: "eth1", namespace: "blue" } });
    expect(link("blue", "eth0").linkinfo.info_kind).toBe("veth");
    expect(link("orange", "eth0").linkinfo.info_kind).toBe("veth");
    expect(link(undefined, "eth0").ifindex).toBe(hostEth0);
    for (const made of [toHost, across]) await veth.delete(made.id, made.outs);
    expect(host.sh(["ip", "link", "show", "veth-eth0-p"], { allowFailure: true })).toBe("");
    expect(host.sh(["ip", "-n", "blue", "link", "show", "eth1"], { allowFailure: true })).toBe("");
    await ns.delete(orange.id, orange.outs);
  });

  test("Bridge: destroy leaves alone a link that took the bridge's name since", async () => {
    const { id, outs } = await bridge.create({ connection, name: "br-reused" });
    host.sh(["ip", "link", "del", "br-reused"]);
    host.sh(["ip", "link", "add", "br-reused", "type", "veth", "peer", "name", "br-reused-p"]);
    await bridge.delete(id, outs);
    expect(link(undefined, "br-reused").linkinfo.info_kind).toBe("veth");
    host.sh(["ip", "link", "del", "br-reused"]);
  });

  test("Veth: a failed create removes the half-made pair", async () => {
    const err = await veth.create({ connection, name: "veth-half", peer: { name: "veth-half-p", master: "no-such-br" } }).catch((e) => e);
    expect(String(err)).toMatch(/no-such-br|Cannot find device/);
    expect(host.sh(["ip", "link", "show", "veth-half"], { allowFailure: true })).toBe("");
    expect(host.sh(["ip", "link", "show", "veth-half-p"], { allowFailure: true })).toBe("");
  });

  test("Address: create, refuse an existing one without adopt, drift (removed), delete", async () => {
    const br = await bridge.create({ connection, name: "br-addr" });
    const inputs = { connection, device: "br-addr", address: "192.168.77.5/24" };
    const { id, outs, news } = await address.create(inputs);
    expect(host.sh(["ip", "-br", "addr", "show", "dev", "br-addr"])).toContain("192.168.77.5/24");
    expect((await address.read(id, outs)).id).toBe(id);

    await expect(address.create(inputs)).rejects.toThrow(/already exists.*adopt/s);
    expect((await address.create({ ...inputs, adopt: true })).id).toBe(id);
    expect((await address.diff(id, outs, { ...inputs, address: "192.168.77.6/24" })).replaces).toEqual(["address"]);
    expect(await address.diff(id, outs, news)).toMatchObject({ changes: false });

    host.sh(["ip", "addr", "del", "192.168.77.5/24", "dev", "br-addr"]);
    // Only reads ran since the listing above, which may still answer: a refresh is a new provider process.
    closeAllHosts();
    expect(await address.read(id, outs)).toEqual({ id: "", props: {} });
    await address.delete(id, outs);

    const v6 = await address.create({ connection, device: "br-addr", address: "2001:DB8:0:0::5/64" });
    expect((await address.read(v6.id, v6.outs)).id).toBe(v6.id);
    await address.delete(v6.id, v6.outs);
    expect(host.sh(["ip", "-br", "addr", "show", "dev", "br-addr"])).not.toContain("2001:db8::5");
    await bridge.delete(br.id, br.outs);
  });
});

describe("Route", () => {
  const route = engine("Route");
  const ns = engine("Namespace");
  const bridge = engine("Bridge");
  const address = engine("Address");

  test("default route in a namespace: create, drift of the gateway is repaired in place, delete", async () => {
    await ns.create({ connection, name: "green" });
    await bridge.create({ connection, name: "br-green", namespace: "green" });
    await address.create({ connection, namespace: "green", device: "br-green", address: "10.77.0.2/24" });
    const inputs = { connection, namespace: "green", destination: "default", via: "10.77.0.1" };
    const { id, outs, news } = await route.create(inputs);
    expect(host.sh(["ip", "-n", "green", "route", "show", "default"])).toContain("via 10.77.0.1");
    expect(outs).toMatchObject({ family: 4, via: "10.77.0.1", device: "br-green", metric: 0 });
    await expect(route.create(inputs)).rejects.toThrow(/route to default.*adopt/s);

    host.sh(["ip", "-n", "green", "route", "replace", "default", "via", "10.77.0.9"]);
    const read = await route.read(id, outs);
    expect(read.props.via).toBe("10.77.0.9");
    expect(await route.diff(id, read.props, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    const repaired = await route.update(id, read.props, news);
    expect(repaired).toMatchObject({ via: "10.77.0.1", metric: 0 });
    expect(host.sh(["ip", "-n", "green", "route", "show", "default"])).toContain("via 10.77.0.1");
    host.sh(["ip", "-n", "green", "route", "replace", "default", "via", "10.77.0.9"]);

    const adopted = await route.create({ ...inputs, adopt: true });
    expect(host.sh(["ip", "-n", "green", "route", "show", "default"])).toContain("via 10.77.0.1");

    const net = await route.create({ connection, namespace: "green", destination: "10.99.0.0/16", device: "br-green", metric: 50 });
    expect(host.sh(["ip", "-n", "green", "route", "show", "10.99.0.0/16"])).toContain("metric 50");
    await route.delete(net.id, net.outs);
    expect(host.sh(["ip", "-n", "green", "route", "show", "10.99.0.0/16"])).toBe("");

    await route.delete(adopted.id, adopted.outs);
    expect(host.sh(["ip", "-n", "green", "route", "show", "default"])).toBe("");
    expect((await route.read(id, outs)).id).toBe("");
    await route.delete(adopted.id, adopted.outs);
    await ns.delete("green", { connection, name: "green" });
  });
});

describe("iptables rules", () => {
  const masquerade = engine("Masquerade");
  const portForward = engine("PortForward");
  const save = (table: string) => host.sh(["iptables-save", "-t", table]);

  test("Masquerade: owned rules, a lookalike survives delete, a removed rule is repaired", async () => {
    const inputs = { connection, source: "192.168.15.0/24" };
    const { id, outs, news } = await masquerade.create(inputs);
    expect(id).toMatch(/^masq-[0-9a-f]{16}$/);
    expect(save("nat")).toContain(
      `-A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -m comment --comment "pulumi-netns:${id}" -j MASQUERADE`,
    );
    expect(save("filter")).toContain(`-A PULUMI-NETNS-FWD -s 192.168.15.0/24 -m comment --comment "pulumi-netns:${id}" -j ACCEPT`);
    expect(outs.rules).toHaveLength(4);

    host.sh(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "192.168.15.0/24", "-j", "MASQUERADE"]);
    host.sh([
      "iptables",
      "-w",
      "-t",
      "filter",
      "-D",
      "PULUMI-NETNS-FWD",
      "-s",
      "192.168.15.0/24",
      "-m",
      "comment",
      "--comment",
      `pulumi-netns:${id}`,
      "-j",
      "ACCEPT",
    ]);
    const read = await masquerade.read(id, outs);
    expect(read.props.rules).toHaveLength(3);
    expect(await masquerade.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
    const updated = await masquerade.update(id, read.props, inputs);
    expect(updated.rules).toEqual(outs.rules);
    expect(await masquerade.diff(id, updated, news)).toMatchObject({ changes: false });
    expect((await masquerade.diff(id, updated, { ...inputs, source: "10.0.0.0/8" })).replaces).toEqual(["source"]);

    await masquerade.delete(id, updated);
    expect(save("nat")).not.toContain(`pulumi-netns:${id}`);
    expect(save("filter")).not.toContain(`pulumi-netns:${id}`);
    expect(save("filter")).not.toContain("PULUMI-NETNS-FWD");
    expect(save("nat")).toContain("-A POSTROUTING -s 192.168.15.0/24 -j MASQUERADE");
    expect((await masquerade.read(id, updated)).id).toBe("");
    await masquerade.delete(id, updated);
    host.sh(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING", "-s", "192.168.15.0/24", "-j", "MASQUERADE"]);
  });

  test("PortForward: always carries -p; all rules gone means the resource is gone", async () => {
    const inputs = { connection, protocol: "udp", port: 5353, to: "192.168.15.2:53" };
    const { id, outs } = await portForward.create(inputs);
    expect(save("nat")).toContain(
      `-A PREROUTING -p udp -m addrtype --dst-type LOCAL -m udp --dport 5353 -m comment --comment "pulumi-netns:${id}" -j DNAT --to-destination 192.168.15.2:53`,
    );
    expect(await portForward.diff(id, outs, inputs)).toMatchObject({ changes: false });
    for (const table of ["nat", "filter"]) {
      const owned = save(table)
        .split("\n")
        .filter((l) => l.includes(id));
      expect(owned.length).toBeGreaterThanOrEqual(2);
      for (const rule of owned) host.sh(["sh", "-c", `iptables -w -t ${table} ${rule.replace(/^-A/, "-D")}`]);
    }
    expect((await portForward.read(id, outs)).id).toBe("");
    await portForward.delete(id, outs);
    expect(save("filter")).not.toContain("PULUMI-NETNS-FWD");
  });
});

describe("Sysctl", () => {
  const sysctl = engine("Sysctl");
  const value = () => host.sh(["sysctl", "-n", "net.ipv4.ip_forward"]).trim();

  test("sets a value, repairs drift, restores the previous value on delete", async () => {
    expect(value()).toBe("0");
    const inputs = { connection, key: "net.ipv4.ip_forward", value: "1" };
    const { id, outs, news } = await sysctl.create(inputs);
    expect(outs).toMatchObject({ value: "1", previous: "0" });
    expect(value()).toBe("1");
    host.sh(["sysctl", "-w", "net.ipv4.ip_forward=0"]);
    const read = await sysctl.read(id, outs);
    expect(read.props.value).toBe("0");
    expect(await sysctl.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
    const updated = await sysctl.update(id, read.props, inputs);
    expect(value()).toBe("1");
    await sysctl.delete(id, updated);
    expect(value()).toBe("0");
  });

  test("a per-interface key that vanished with its interface reads as gone and deletes cleanly", async () => {
    host.sh(["ip", "link", "add", "dummy-sys", "type", "bridge"]);
    const { id, outs } = await sysctl.create({ connection, key: "net.ipv4.conf.dummy-sys.forwarding", value: "1" });
    host.sh(["ip", "link", "del", "dummy-sys"]);
    expect(await sysctl.read(id, outs)).toEqual({ id: "", props: {} });
    await sysctl.delete(id, outs);
  });
});
