/** Holder bookkeeping: who joins, who leaves, what the last one restores or deletes. All pure. */
import { commitArgv, currentRecord, HolderRecord, holderPath, join, leave, parseRecord } from "../../provider/holders";
import { joinSysctl, leaveSysctl, parseSysctlValues, reach, restoreWrites, sysctlGroup } from "../../provider/kinds/sysctl";
import { arePeers } from "../../provider/kinds/veth";
import type { LinkState } from "../../provider/iproute";

test("record paths: one file per object, scoped by namespace", () => {
  expect(holderPath("link", undefined, "br0")).toBe("/run/pulumi-netns/link/host/br0");
  expect(holderPath("sysctl", "red", "ipv4-forwarding")).toBe("/run/pulumi-netns/sysctl/netns/red/ipv4-forwarding");
});

test("the commit is a constant script; path, records and command arrive as arguments", () => {
  const argv = commitArgv("/run/pulumi-netns/link/host/br0", "", '{"identity":"x"}', ["ip", "link", "del", "dev", "br0"]);
  expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
  expect(argv.slice(3)).toEqual(["sh", "/run/pulumi-netns/link/host/br0", "", '{"identity":"x"}', "ip", "link", "del", "dev", "br0"]);
  expect(commitArgv("/a", "x", "y")[2]).toBe(argv[2]);
  expect(argv[2]).toMatch(/flock -w 60 9/);
});

test("join and leave: the last holder leaving is told so; an unknown holder never was one", () => {
  const record: HolderRecord = { identity: "i1", holders: { a: "Bridge" } };
  const both = join(record, "b", "Bridge")!;
  expect(both.holders).toEqual({ a: "Bridge", b: "Bridge" });
  expect(leave(both, "a")).toEqual({ next: { identity: "i1", holders: { b: "Bridge" } }, last: false, wasHolder: true });
  expect(leave(leave(both, "a").next, "b")).toEqual({ next: undefined, last: true, wasHolder: true });
  // A resource from before holder records has no token: it is last only when nobody holds the object.
  expect(leave(both, undefined)).toMatchObject({ last: false, wasHolder: false });
  expect(leave(undefined, undefined)).toMatchObject({ last: true, wasHolder: false });
  expect(leave(undefined, "zz")).toMatchObject({ last: true, wasHolder: false });
});

test("a record about an object that was made again since is ignored", () => {
  const record: HolderRecord = { identity: "4026532316 2026-01-01/7", holders: { a: "Bridge" } };
  expect(currentRecord(record, "4026532316 2026-01-01/7")).toBe(record);
  expect(currentRecord(record, "4026532316 2026-02-02/7")).toBeUndefined();
});

test("records parse or fail naming the file", () => {
  expect(parseRecord("/f", "")).toBeUndefined();
  expect(parseRecord("/f", '{"identity":"host","holders":{"a":"k"}}')).toEqual({ identity: "host", holders: { a: "k" } });
  expect(() => parseRecord("/f", "{oops")).toThrow(/holder record \/f is damaged/);
  expect(() => parseRecord("/f", '{"holders":{}}')).toThrow(/damaged/);
});

describe("sysctl groups", () => {
  const v4 = sysctlGroup("net.ipv4.ip_forward");
  const output = [
    "net.ipv4.conf.all.accept_redirects = 1",
    "net.ipv4.conf.all.forwarding = 0",
    "net.ipv4.conf.default.forwarding = 0",
    "net.ipv4.conf.eth0.forwarding = 0",
    "net.ipv4.conf.eth0/100.forwarding = 1",
    "net.ipv4.conf.eth0.mc_forwarding = 0",
    "net.ipv4.ip_forward = 0",
  ].join("\n");

  test("forwarding keys share a group with every key their write rewrites; others stand alone", () => {
    expect(sysctlGroup("net.ipv4.conf.all.forwarding").name).toBe("ipv4-forwarding");
    expect(sysctlGroup("net.ipv4.conf.veth-x.forwarding").name).toBe("ipv4-forwarding");
    expect(sysctlGroup("net.ipv6.conf.all.forwarding")).toMatchObject({ name: "ipv6-forwarding", primary: "net.ipv6.conf.all.forwarding" });
    expect(sysctlGroup("net.ipv4.conf.all.accept_redirects")).toMatchObject({ name: "net.ipv4.conf.all.accept_redirects", readArgs: ["net.ipv4.conf.all.accept_redirects"] });
    expect(sysctlGroup("net.core.somaxconn").primary).toBeUndefined();
    expect(v4.readArgs).toEqual(["-r", "\\.forwarding$|^net\\.ipv4\\.ip_forward$|^net\\.ipv4\\.conf\\.all\\.accept_redirects$", "net.ipv4"]);
  });

  test("values: members only, multi-value settings normalised", () => {
    expect([...parseSysctlValues(output, v4).keys()]).toEqual([
      "net.ipv4.conf.all.accept_redirects",
      "net.ipv4.conf.all.forwarding",
      "net.ipv4.conf.default.forwarding",
      "net.ipv4.conf.eth0.forwarding",
      "net.ipv4.conf.eth0/100.forwarding",
      "net.ipv4.ip_forward",
    ]);
    const tcp = sysctlGroup("net.ipv4.tcp_rmem");
    expect(parseSysctlValues("net.ipv4.tcp_rmem = 4096\t131072\t6291456\n", tcp).get("net.ipv4.tcp_rmem")).toBe("4096 131072 6291456");
  });

  test("the first holder snapshots the group; later ones keep that snapshot", () => {
    const found = parseSysctlValues(output, v4);
    const a = joinSysctl(undefined, "host", "A", "net.ipv4.ip_forward", found);
    expect(a.original["net.ipv4.conf.all.accept_redirects"]).toBe("1");
    expect(a.holders).toEqual({ A: "net.ipv4.ip_forward" });
    const afterWrite = new Map([...found].map(([k]) => [k, k.endsWith("accept_redirects") ? "0" : "1"]));
    const ab = joinSysctl(a, "host", "B", "net.ipv4.ip_forward", afterWrite);
    expect(ab.original).toEqual(a.original);
    expect(Object.keys(ab.holders)).toEqual(["A", "B"]);
    // Records of a namespace made again since start over.
    expect(joinSysctl(a, "other", "C", "net.ipv4.ip_forward", afterWrite).original["net.ipv4.ip_forward"]).toBe("1");
  });

  test("only the last holder restores: the primary first, then every member it rewrote", () => {
    const found = parseSysctlValues(output, v4);
    const ab = joinSysctl(joinSysctl(undefined, "host", "A", "net.ipv4.ip_forward", found), "host", "B", "net.ipv4.ip_forward", found);
    const on = new Map([...found].map(([k]) => [k, k.endsWith("accept_redirects") ? "0" : "1"]));
    const first = leaveSysctl(ab, "host", "A", v4, on);
    expect(first.writes).toEqual([]);
    expect(first.next?.holders).toEqual({ B: "net.ipv4.ip_forward" });
    expect(leaveSysctl(first.next, "host", "B", v4, on)).toEqual({
      next: undefined,
      writes: [
        "net.ipv4.ip_forward=0",
        "net.ipv4.conf.all.accept_redirects=1",
        "net.ipv4.conf.all.forwarding=0",
        "net.ipv4.conf.default.forwarding=0",
        "net.ipv4.conf.eth0.forwarding=0",
        "net.ipv4.conf.eth0/100.forwarding=1",
      ],
    });
    // A holder that was never recorded (a reboot cleared /run) restores nothing.
    expect(leaveSysctl(undefined, "host", "A", v4, on)).toEqual({ next: undefined, writes: [] });
  });

  test("restore writes only what differs when the primary is already right; vanished keys are skipped", () => {
    const original = { "net.ipv4.ip_forward": "1", "net.ipv4.conf.eth0.forwarding": "0", "net.ipv4.conf.gone.forwarding": "1" };
    const now = new Map([["net.ipv4.ip_forward", "1"], ["net.ipv4.conf.eth0.forwarding", "1"]]);
    expect(restoreWrites(v4, original, now)).toEqual(["net.ipv4.conf.eth0.forwarding=0"]);
    expect(restoreWrites(sysctlGroup("net.core.somaxconn"), { "net.core.somaxconn": "4096" }, new Map([["net.core.somaxconn", "4096"]]))).toEqual([]);
  });

  test("a write reaches the group from ip_forward or conf.all, only itself from one interface's key", () => {
    expect(["net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.eth0.forwarding"].filter(reach(v4, "net.ipv4.conf.all.forwarding"))).toHaveLength(3);
    expect(["net.ipv4.ip_forward", "net.ipv4.conf.eth0.forwarding", "net.ipv4.conf.lo.forwarding"].filter(reach(v4, "net.ipv4.conf.eth0.forwarding"))).toEqual([
      "net.ipv4.conf.eth0.forwarding",
    ]);
    expect(reach(v4, "net.ipv4.conf.default.forwarding")("net.ipv4.conf.eth0.forwarding")).toBe(false);
    const v6 = sysctlGroup("net.ipv6.conf.lo.forwarding");
    expect(reach(v6, "net.ipv6.conf.all.forwarding")("net.ipv6.conf.lo.forwarding")).toBe(true);
    expect(reach(v6, "net.ipv6.conf.eth0.forwarding")("net.ipv6.conf.all.forwarding")).toBe(false);
  });

  test("a holder of one interface's key snapshots and restores that key alone, whatever ip_forward does meanwhile", () => {
    const found = parseSysctlValues(output, v4);
    const eth0 = joinSysctl(undefined, "host", "X", "net.ipv4.conf.eth0.forwarding", found);
    expect(eth0.original).toEqual({ "net.ipv4.conf.eth0.forwarding": "0" });
    // ip_forward turned on by hand rewrote every interface's key.
    const byHand = new Map([...found].map(([k]) => [k, k.endsWith("accept_redirects") ? "0" : "1"]));
    expect(leaveSysctl(eth0, "host", "X", v4, byHand)).toEqual({ next: undefined, writes: ["net.ipv4.conf.eth0.forwarding=0"] });
  });

  test("an ip_forward holder leaving before an interface holder restores the group but that interface's key", () => {
    const found = parseSysctlValues(output, v4);
    const both = joinSysctl(joinSysctl(undefined, "host", "A", "net.ipv4.ip_forward", found), "host", "X", "net.ipv4.conf.eth0.forwarding", found);
    // X set eth0 to 0 while forwarding was on everywhere.
    const now = new Map([...found].map(([k]) => [k, k.endsWith("accept_redirects") || k.includes(".eth0.") ? "0" : "1"]));
    const afterA = leaveSysctl(both, "host", "A", v4, now);
    expect(afterA.writes).toEqual([
      "net.ipv4.ip_forward=0",
      "net.ipv4.conf.all.accept_redirects=1",
      "net.ipv4.conf.all.forwarding=0",
      "net.ipv4.conf.default.forwarding=0",
      "net.ipv4.conf.eth0/100.forwarding=1",
      // Rewritten by the ip_forward write, so put back as X holds it.
      "net.ipv4.conf.eth0.forwarding=0",
    ]);
    expect(afterA.next).toEqual({ identity: "host", holders: { X: "net.ipv4.conf.eth0.forwarding" }, original: { "net.ipv4.conf.eth0.forwarding": "0" } });

    // The other order: the interface holder leaves while ip_forward's holder still reaches its key.
    const xFirst = joinSysctl(joinSysctl(undefined, "host", "X", "net.ipv4.conf.eth0.forwarding", found), "host", "A", "net.ipv4.ip_forward", now);
    expect(xFirst.original["net.ipv4.conf.eth0.forwarding"]).toBe("0");
    expect(xFirst.original["net.ipv4.ip_forward"]).toBe("1");
    const afterX = leaveSysctl(xFirst, "host", "X", v4, now);
    expect(afterX.writes).toEqual([]);
    expect(afterX.next?.original).toEqual(xFirst.original);
  });

  test("a holder whose key vanished with its interface is dropped", () => {
    const found = parseSysctlValues(output, v4);
    const record = joinSysctl(joinSysctl(undefined, "host", "X", "net.ipv4.conf.eth0.forwarding", found), "host", "A", "net.ipv4.ip_forward", found);
    const withoutEth0 = new Map([...found].filter(([k]) => !k.includes(".eth0.")));
    expect(leaveSysctl(record, "host", "A", v4, withoutEth0).writes).toEqual([]);
    expect(joinSysctl(record, "host", "B", "net.ipv4.ip_forward", withoutEth0).holders).toEqual({ A: "net.ipv4.ip_forward", B: "net.ipv4.ip_forward" });
  });
});

test("veth peers: named in one namespace, cross-indexed across two", () => {
  const end = (name: string, ifindex: number, peer: LinkState["peer"]): LinkState => ({ name, ifindex, kind: "veth", mtu: 1500, up: true, peer });
  expect(arePeers(end("a", 3, { name: "b", otherNamespace: false }), end("b", 2, { name: "a", otherNamespace: false }), true)).toBe(true);
  expect(arePeers(end("a", 3, { name: "x", otherNamespace: false }), end("b", 2, { name: "y", otherNamespace: false }), true)).toBe(false);
  expect(arePeers(end("a", 4, { ifindex: 2, otherNamespace: true }), end("b", 2, { ifindex: 4, otherNamespace: true }), false)).toBe(true);
  expect(arePeers(end("a", 4, { ifindex: 2, otherNamespace: true }), end("b", 2, { ifindex: 5, otherNamespace: true }), false)).toBe(false);
  expect(arePeers(end("a", 4, { ifindex: 2, otherNamespace: true }), { ...end("b", 2, { ifindex: 4, otherNamespace: true }), kind: "bridge" }, false)).toBe(false);
});
