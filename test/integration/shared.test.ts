/**
 * Objects shared by two programs ("stacks") on one host: each resource is a holder; the setting is
 * restored, the bridge deleted, only when the last holder leaves — in either order. And Veth edges:
 * adopting two unrelated ends, an end moved to another namespace by hand.
 */
import { engine } from "../harness/engine";
import type { TestHost } from "../harness/throwawayHosts";
import { useTestHost } from "../harness/testHost";

let host: TestHost;
let connection: Record<string, unknown>;
useTestHost((h) => {
  host = h;
  connection = h.connection();
});

const sysctl = engine("Sysctl");
const bridge = engine("Bridge");
const veth = engine("Veth");
const ns = engine("Namespace");

/** Every IPv4 per-interface setting and every IPv6 forwarding switch inside the test host (or a namespace of it). */
const settings = (namespace?: string) =>
  host.sh([
    ...(namespace ? ["ip", "netns", "exec", namespace] : []),
    "sh",
    "-c",
    "sysctl net.ipv4.conf; sysctl -r '\\.forwarding$' net.ipv6.conf",
  ]);
const value = (key: string, namespace?: string) =>
  host.sh([...(namespace ? ["ip", "netns", "exec", namespace] : []), "sysctl", "-n", key]).trim();
/** Holder record files of one area (sysctl, link) inside the test host. */
const records = (area: string) => host.sh(["sh", "-c", 'cd /run/pulumi-netns 2>/dev/null && find "./$1" -type f | sort', "sh", area]);
const linkNames = (namespace?: string) =>
  JSON.parse(host.sh(["ip", ...(namespace ? ["-n", namespace] : []), "-j", "link", "show"])).map((l: { ifname: string }) => l.ifname);
const linkExists = (name: string, namespace?: string) => linkNames(namespace).includes(name);

describe("a kernel setting held by two stacks", () => {
  beforeAll(() => {
    // An interface whose forwarding differs from the global switch: turning ip_forward on and off again
    // would lose it, so only a restore of the whole snapshot gets it back.
    host.sh(["ip", "link", "add", "pre-br", "type", "bridge"]);
    host.sh(["sysctl", "-q", "-w", "net.ipv4.conf.pre-br.forwarding=1", "net.ipv6.conf.pre-br.forwarding=1"]);
  });

  for (const order of ["A first", "B first"] as const) {
    test(`ip_forward stays while the other stack lives; destroying both (${order}) leaves the host as it was`, async () => {
      const before = settings();
      expect(value("net.ipv4.ip_forward")).toBe("0");
      const a = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
      expect(a.outs).toMatchObject({ previous: "0", value: "1" });
      expect(value("net.ipv4.conf.all.accept_redirects")).toBe("0");
      const b = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
      // B found 1, but the value restored at the end is the one the first holder found.
      expect(b.outs).toMatchObject({ previous: "0" });
      expect(b.outs.holder).not.toBe(a.outs.holder);

      const [first, second] = order === "A first" ? [a, b] : [b, a];
      await sysctl.delete(first.id, first.outs);
      expect(value("net.ipv4.ip_forward")).toBe("1");
      expect((await sysctl.read(second.id, second.outs)).props.value).toBe("1");
      await sysctl.delete(second.id, second.outs);
      expect(settings()).toBe(before);
      expect(records("sysctl")).toBe("");
    });
  }

  test("IPv6 forwarding: every per-interface switch comes back; one still held keeps its value", async () => {
    const before = settings();
    const a = await sysctl.create({ connection, key: "net.ipv6.conf.all.forwarding", value: "1" });
    const b = await sysctl.create({ connection, key: "net.ipv6.conf.lo.forwarding", value: "1" });
    expect(value("net.ipv6.conf.pre-br.forwarding")).toBe("1");
    await sysctl.delete(a.id, a.outs);
    // B's write reaches lo alone: the switch A set goes back, lo stays as B holds it.
    expect(value("net.ipv6.conf.all.forwarding")).toBe("0");
    expect(value("net.ipv6.conf.lo.forwarding")).toBe("1");
    await sysctl.delete(b.id, b.outs);
    expect(settings()).toBe(before);
    expect(records("sysctl")).toBe("");
  });

  /** Puts back what turning ip_forward on by hand rewrote (pre-br's forwarding differs from the switch). */
  const forwardingOffAgain = () =>
    host.sh(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0", "net.ipv4.conf.all.accept_redirects=1", "net.ipv4.conf.pre-br.forwarding=1"]);

  test("one interface's forwarding restores that key alone: ip_forward changed by hand meanwhile stays", async () => {
    const before = settings();
    expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
    const lo = await sysctl.create({ connection, key: "net.ipv4.conf.lo.forwarding", value: "1" });
    try {
      expect(value("net.ipv4.ip_forward")).toBe("0");
      host.sh(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);
      await sysctl.delete(lo.id, lo.outs);
      expect(value("net.ipv4.ip_forward")).toBe("1");
      expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
      expect(records("sysctl")).toBe("");
    } finally {
      forwardingOffAgain();
    }
    expect(settings()).toBe(before);
  });

  for (const order of ["ip_forward first", "interface first"] as const) {
    test(`ip_forward and one interface's forwarding held together: each leaves what the other still holds (${order} goes)`, async () => {
      const before = settings();
      const all = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
      const one = await sysctl.create({ connection, key: "net.ipv4.conf.pre-br.forwarding", value: "0" });
      expect(one.outs.previous).toBe("1");
      if (order === "ip_forward first") {
        await sysctl.delete(all.id, all.outs);
        expect(value("net.ipv4.ip_forward")).toBe("0");
        expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
        expect(value("net.ipv4.conf.pre-br.forwarding")).toBe("0");
        await sysctl.delete(one.id, one.outs);
      } else {
        await sysctl.delete(one.id, one.outs);
        expect(value("net.ipv4.ip_forward")).toBe("1");
        await sysctl.delete(all.id, all.outs);
      }
      expect(settings()).toBe(before);
      expect(records("sysctl")).toBe("");
    });
  }

  for (const joins of ["ip_forward joins first", "lo joins first"] as const) {
    test(`X holds ip_forward=1, Y lo's forwarding=0 (${joins}): lo stays 0 throughout; X leaving puts back all but Y's key`, async () => {
      const before = settings();
      const holdX = () => sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
      const holdY = () => sysctl.create({ connection, key: "net.ipv4.conf.lo.forwarding", value: "0" });
      const x = joins === "ip_forward joins first" ? await holdX() : undefined;
      const y = await holdY();
      const bothX = x ?? (await holdX());
      expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
      for (const key of [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.all.forwarding",
        "net.ipv4.conf.default.forwarding",
        "net.ipv4.conf.pre-br.forwarding",
      ]) {
        expect(value(key)).toBe("1");
      }
      // An update of X's value goes through the record too, and still leaves lo alone.
      await sysctl.update(bothX.id, bothX.outs, { connection, key: "net.ipv4.ip_forward", value: "0" });
      expect(value("net.ipv4.conf.pre-br.forwarding")).toBe("0");
      const outs = await sysctl.update(bothX.id, bothX.outs, { connection, key: "net.ipv4.ip_forward", value: "1" });
      expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
      await sysctl.delete(bothX.id, outs);
      expect(settings()).toBe(before);
      expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
      await sysctl.delete(y.id, y.outs);
      expect(settings()).toBe(before);
      expect(records("sysctl")).toBe("");
    });
  }

  test("an interface holder leaving while ip_forward is held gets ip_forward's value", async () => {
    const before = settings();
    const x = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
    const y = await sysctl.create({ connection, key: "net.ipv4.conf.lo.forwarding", value: "0" });
    await sysctl.delete(y.id, y.outs);
    expect(value("net.ipv4.conf.lo.forwarding")).toBe("1");
    await sysctl.delete(x.id, x.outs);
    expect(settings()).toBe(before);
  });

  test("an interface made while ip_forward is held goes back to off, whichever holder joined after it", async () => {
    const before = settings();
    const x = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
    try {
      host.sh(["ip", "link", "add", "late-br", "type", "bridge"]);
      // Copied from default, which ip_forward turned on.
      expect(value("net.ipv4.conf.late-br.forwarding")).toBe("1");
      const y = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
      await sysctl.delete(x.id, x.outs);
      await sysctl.delete(y.id, y.outs);
      expect(value("net.ipv4.conf.late-br.forwarding")).toBe("0");
    } finally {
      host.sh(["ip", "link", "del", "late-br"]);
    }
    expect(settings()).toBe(before);
    expect(records("sysctl")).toBe("");
  });

  test("holders joining and leaving at the same time end with the host as it was", async () => {
    const before = settings();
    const made = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        sysctl.create({ connection, key: i % 2 ? "net.ipv4.conf.all.forwarding" : "net.ipv4.ip_forward", value: "1" }),
      ),
    );
    expect(new Set(made.map((m) => m.outs.previous))).toEqual(new Set(["0"]));
    await Promise.all(made.map((m) => sysctl.delete(m.id, m.outs)));
    expect(settings()).toBe(before);
    expect(records("sysctl")).toBe("");
  });

  test("per namespace: held per namespace; a namespace made again does not inherit old holders", async () => {
    await ns.create({ connection, name: "shared-ns" });
    const before = settings("shared-ns");
    const a = await sysctl.create({ connection, namespace: "shared-ns", key: "net.ipv4.ip_forward", value: "1" });
    const b = await sysctl.create({ connection, namespace: "shared-ns", key: "net.ipv4.ip_forward", value: "1" });
    expect(value("net.ipv4.ip_forward")).toBe("0");
    await sysctl.delete(a.id, a.outs);
    expect(value("net.ipv4.ip_forward", "shared-ns")).toBe("1");
    await sysctl.delete(b.id, b.outs);
    expect(settings("shared-ns")).toBe(before);

    // A holder whose namespace was deleted and made again: its record is stale and ignored.
    const stale = await sysctl.create({ connection, namespace: "shared-ns", key: "net.ipv4.ip_forward", value: "1" });
    host.sh(["ip", "netns", "del", "shared-ns"]);
    host.sh(["ip", "netns", "add", "shared-ns"]);
    const fresh = await sysctl.create({ connection, namespace: "shared-ns", key: "net.ipv4.ip_forward", value: "1" });
    expect(fresh.outs.previous).toBe("0");
    await sysctl.delete(stale.id, stale.outs);
    expect(value("net.ipv4.ip_forward", "shared-ns")).toBe("1");
    await sysctl.delete(fresh.id, fresh.outs);
    expect(value("net.ipv4.ip_forward", "shared-ns")).toBe("0");

    // A holder whose namespace is gone: delete succeeds and cleans its record.
    const orphan = await sysctl.create({ connection, namespace: "shared-ns", key: "net.ipv4.ip_forward", value: "1" });
    host.sh(["ip", "netns", "del", "shared-ns"]);
    await sysctl.delete(orphan.id, orphan.outs);
    expect(records("sysctl")).toBe("");
  });

  test("an imported Sysctl (no holder token, `previous` only): restores previous alone, defers to holders", async () => {
    const before = settings();
    // What import leaves in state: no holder, and no record on the host.
    const imported = async (key: string) => {
      const {
        id,
        outs: { holder: _holder, ...outs },
      } = await sysctl.create({ connection, key, value: "1" });
      host.sh(["rm", "-rf", "/run/pulumi-netns/sysctl"]);
      return { id, outs };
    };
    // Alone: it puts back the value it found.
    const alone = await imported("net.ipv4.ip_forward");
    await sysctl.delete(alone.id, alone.outs);
    expect(value("net.ipv4.ip_forward")).toBe("0");

    // With a holder recorded: it leaves the setting to that holder, whose departure restores everything.
    const held = await imported("net.ipv4.ip_forward");
    const current = await sysctl.create({ connection, key: "net.ipv4.ip_forward", value: "1" });
    await sysctl.delete(held.id, held.outs);
    expect(value("net.ipv4.ip_forward")).toBe("1");
    await sysctl.delete(current.id, current.outs);
    // The holder's snapshot was taken with forwarding on: that is what it restores.
    expect(value("net.ipv4.ip_forward")).toBe("1");
    forwardingOffAgain();
    expect(settings()).toBe(before);

    // With only a holder of one interface's key recorded: its own previous goes back, that key stays held.
    const beneath = await imported("net.ipv4.ip_forward");
    const one = await sysctl.create({ connection, key: "net.ipv4.conf.pre-br.forwarding", value: "0" });
    await sysctl.delete(beneath.id, beneath.outs);
    expect(value("net.ipv4.ip_forward")).toBe("0");
    expect(value("net.ipv4.conf.lo.forwarding")).toBe("0");
    expect(value("net.ipv4.conf.pre-br.forwarding")).toBe("0");
    await sysctl.delete(one.id, one.outs);
    expect(settings()).toBe(before);
    expect(records("sysctl")).toBe("");
  });
});

describe("a bridge shared by two stacks", () => {
  for (const order of ["creator first", "adopter first"] as const) {
    test(`created by A, adopted by B: stays while either holds it, goes with the last (${order})`, async () => {
      const before = linkNames();
      const a = await bridge.create({ connection, name: "br-shared" });
      await expect(bridge.create({ connection, name: "br-shared" })).rejects.toThrow(/already exists/);
      const b = await bridge.create({ connection, name: "br-shared", adopt: true });
      const [first, second] = order === "creator first" ? [a, b] : [b, a];
      await bridge.delete(first.id, first.outs);
      expect(linkExists("br-shared")).toBe(true);
      expect((await bridge.read(second.id, second.outs)).id).toBe("br-shared");
      await bridge.delete(second.id, second.outs);
      expect(linkNames()).toEqual(before);
      expect(records("link")).toBe("");
    });
  }

  test("adopted by both: the last holder deletes it, as any adopted object", async () => {
    host.sh(["ip", "link", "add", "br-both", "type", "bridge"]);
    const a = await bridge.create({ connection, name: "br-both", adopt: true });
    const b = await bridge.create({ connection, name: "br-both", adopt: true });
    await bridge.delete(a.id, a.outs);
    expect(linkExists("br-both")).toBe(true);
    await bridge.delete(b.id, b.outs);
    expect(linkExists("br-both")).toBe(false);
  });

  test("in a namespace; a bridge deleted and made again by hand is a new object with no holders", async () => {
    const namespace = await ns.create({ connection, name: "br-ns" });
    const a = await bridge.create({ connection, name: "br-in", namespace: "br-ns" });
    const b = await bridge.create({ connection, name: "br-in", namespace: "br-ns", adopt: true });
    await bridge.delete(b.id, b.outs);
    expect(linkExists("br-in", "br-ns")).toBe(true);
    host.sh(["ip", "-n", "br-ns", "link", "del", "br-in"]);
    host.sh(["ip", "-n", "br-ns", "link", "add", "br-in", "type", "bridge"]);
    // A's record is about the old bridge: C, adopting the new one, is its only holder.
    const c = await bridge.create({ connection, name: "br-in", namespace: "br-ns", adopt: true });
    await bridge.delete(c.id, c.outs);
    expect(linkExists("br-in", "br-ns")).toBe(false);
    await bridge.delete(a.id, a.outs);
    await ns.delete(namespace.id, namespace.outs);
  });

  test("adopting a link that is not a bridge fails and records nothing", async () => {
    const a = await bridge.create({ connection, name: "br-keep" });
    host.sh(["ip", "link", "add", "br-notbr", "type", "veth", "peer", "name", "br-notbr-p"]);
    await expect(bridge.create({ connection, name: "br-notbr", adopt: true })).rejects.toThrow(/veth link, not a bridge/);
    expect(records("link")).toBe("./link/host/br-keep\n");
    await bridge.delete(a.id, a.outs);
    expect(linkExists("br-keep")).toBe(false);
    host.sh(["ip", "link", "del", "br-notbr"]);
  });
});

describe("Veth edges", () => {
  beforeAll(async () => {
    for (const name of ["vx1", "vx2"]) await ns.create({ connection, name });
  });

  test("adopting refuses two ends of different pairs, in one namespace and across two", async () => {
    host.sh(["ip", "link", "add", "ua", "type", "veth", "peer", "name", "ub"]);
    host.sh(["ip", "link", "add", "uc", "type", "veth", "peer", "name", "ud"]);
    await expect(veth.create({ connection, name: "ua", adopt: true, peer: { name: "uc" } })).rejects.toThrow(
      /"ua" and "uc" are not the two ends of one veth pair/,
    );
    host.sh(["ip", "link", "set", "ub", "netns", "vx1"]);
    host.sh(["ip", "link", "set", "ud", "netns", "vx1"]);
    await expect(veth.create({ connection, name: "ua", adopt: true, peer: { name: "ud", namespace: "vx1" } })).rejects.toThrow(
      /not the two ends of one veth pair/,
    );
    expect(linkExists("ua") && linkExists("uc")).toBe(true);
    const ok = await veth.create({ connection, name: "ua", adopt: true, peer: { name: "ub", namespace: "vx1" } });
    await veth.delete(ok.id, ok.outs);
    expect(linkExists("ua")).toBe(false);
    expect(linkExists("uc")).toBe(true);
    host.sh(["ip", "link", "del", "uc"]);
  });

  test("an end moved to another namespace is drift (replace); delete finds the pair where it is", async () => {
    const inputs = { connection, name: "mv-a", namespace: "vx1", peer: { name: "mv-b" } };
    const { id, outs, news } = await veth.create(inputs);
    host.sh(["ip", "-n", "vx1", "link", "set", "mv-a", "netns", "vx2"]);
    const read = await veth.read(id, outs);
    expect(read.id).toBe(id);
    expect(read.props.namespace).toBe("vx2");
    expect(await veth.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: ["namespace"] });
    await veth.delete(id, read.props);
    expect(linkExists("mv-a", "vx2") || linkExists("mv-b")).toBe(false);
  });

  test("an end moved out of the host's own namespace is drift too; update puts the cable back", async () => {
    const inputs = { connection, name: "mr-a", peer: { name: "mr-b", namespace: "vx1" } };
    const { id, outs, news } = await veth.create(inputs);
    host.sh(["ip", "link", "set", "mr-a", "netns", "vx2"]);
    const read = await veth.read(id, outs);
    expect(read.props.namespace).toBe("vx2");
    expect(await veth.diff(id, read.props, news)).toMatchObject({ changes: true, replaces: [] });
    const updated = await veth.update(id, read.props, inputs);
    expect(updated.namespace).toBeUndefined();
    expect(linkExists("mr-a")).toBe(true);
    expect(linkExists("mr-a", "vx2")).toBe(false);
    expect(await veth.diff(id, updated, news)).toMatchObject({ changes: false });

    // The other end moved: reported as the peer's namespace; delete still removes the pair.
    host.sh(["ip", "-n", "vx1", "link", "set", "mr-b", "netns", "vx2"]);
    const peerMoved = await veth.read(id, updated);
    expect((peerMoved.props.peer as { namespace?: string }).namespace).toBe("vx2");
    expect((await veth.diff(id, peerMoved.props, news)).replaces).toEqual(["peer"]);
    await veth.delete(id, peerMoved.props);
    expect(linkExists("mr-a") || linkExists("mr-b", "vx2")).toBe(false);
    expect((await veth.read(id, peerMoved.props)).id).toBe("");
  });
});
