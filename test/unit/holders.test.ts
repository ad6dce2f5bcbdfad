/** Holder bookkeeping: who joins, who leaves, what the last one restores or deletes. All pure. */
import { commitArgv, currentRecord, HolderRecord, holderPath, join, leave, lockWaitSeconds, parseRecord } from "../../provider/holders";
import {
  parseSysctlValues,
  reach,
  settle,
  SysctlHolding,
  SysctlRecord,
  sysctlGroup,
  wantedValues,
  writesFor,
  written,
} from "../../provider/kinds/sysctl";
import { arePeers } from "../../provider/kinds/veth";
import type { LinkState } from "../../provider/iproute";

test("record paths: one file per object, scoped by namespace", () => {
  expect(holderPath("link", undefined, "br0")).toBe("/run/pulumi-netns/link/host/br0");
  expect(holderPath("sysctl", "red", "ipv4-forwarding")).toBe("/run/pulumi-netns/sysctl/netns/red/ipv4-forwarding");
});

test("the commit is a constant script; path, records and command arrive as arguments", () => {
  const argv = commitArgv("/run/pulumi-netns/link/host/br0", "", '{"identity":"x"}', ["ip", "link", "del", "dev", "br0"]);
  expect(argv.slice(0, 2)).toEqual(["sh", "-c"]);
  expect(argv.slice(3)).toEqual(["sh", "30", "/run/pulumi-netns/link/host/br0", "", '{"identity":"x"}', "ip", "link", "del", "dev", "br0"]);
  expect(commitArgv("/a", "x", "y")[2]).toBe(argv[2]);
  expect(argv[2]).toMatch(/flock -w "\$wait" 9/);
  // The lock wait stays inside the client's command timeout, whatever it is set to.
  expect(commitArgv("/a", "x", "y", [], lockWaitSeconds(10))[4]).toBe("5");
  expect(lockWaitSeconds(1)).toBe(1);
});

test("join and leave: the last holder leaving is told so", () => {
  const record: HolderRecord = { identity: "i1", holders: { a: "Bridge" } };
  const both = join(record, "b", "Bridge")!;
  expect(both.holders).toEqual({ a: "Bridge", b: "Bridge" });
  expect(leave(both, "a")).toEqual({ next: { identity: "i1", holders: { b: "Bridge" } }, last: false });
  expect(leave(leave(both, "a").next, "b")).toEqual({ next: undefined, last: true });
  // An imported resource has no token: it is last only when nobody holds the object.
  expect(leave(both, undefined)).toMatchObject({ last: false });
  expect(leave(undefined, undefined)).toMatchObject({ last: true });
  expect(leave(undefined, "zz")).toMatchObject({ last: true });
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
  const found = parseSysctlValues(output, v4);
  const IP_FORWARD = "net.ipv4.ip_forward";
  const ETH0 = "net.ipv4.conf.eth0.forwarding";
  const VLAN = "net.ipv4.conf.eth0/100.forwarding";

  /** One change settled, and the host as the kernel leaves it after the writes. */
  function step(
    state: { record?: SysctlRecord; values: Map<string, string> },
    token: string | undefined,
    holding?: SysctlHolding,
    group = v4,
  ) {
    const { next, writes } = settle(group, state.record, "host", state.values, token, holding);
    const values = writes.map((w) => w.split("=")).reduce((now, [key, value]) => written(group, now, { key, value }), state.values);
    return { record: next, values, writes };
  }
  const on = (key: string, value: string) => ({ key, value });

  test("forwarding keys and accept_redirects share a group with every key a forwarding write rewrites; others stand alone", () => {
    expect(sysctlGroup("net.ipv4.conf.all.forwarding").name).toBe("ipv4-forwarding");
    expect(sysctlGroup("net.ipv4.conf.veth-x.forwarding").name).toBe("ipv4-forwarding");
    expect(sysctlGroup("net.ipv4.conf.all.accept_redirects").name).toBe("ipv4-forwarding");
    expect(sysctlGroup("net.ipv6.conf.all.forwarding")).toMatchObject({ name: "ipv6-forwarding", primary: "net.ipv6.conf.all.forwarding" });
    expect(sysctlGroup("net.ipv4.conf.eth0.accept_redirects")).toMatchObject({
      name: "net.ipv4.conf.eth0.accept_redirects",
      readArgs: ["net.ipv4.conf.eth0.accept_redirects"],
    });
    expect(sysctlGroup("net.core.somaxconn").primary).toBeUndefined();
    expect(v4.readArgs).toEqual([
      "-r",
      "\\.forwarding$|^net\\.ipv4\\.ip_forward$|^net\\.ipv4\\.conf\\.all\\.accept_redirects$",
      "net.ipv4",
    ]);
  });

  test("values: members only, multi-value settings normalised", () => {
    expect([...found.keys()]).toEqual([
      "net.ipv4.conf.all.accept_redirects",
      "net.ipv4.conf.all.forwarding",
      "net.ipv4.conf.default.forwarding",
      ETH0,
      VLAN,
      IP_FORWARD,
    ]);
    const tcp = sysctlGroup("net.ipv4.tcp_rmem");
    expect(parseSysctlValues("net.ipv4.tcp_rmem = 4096\t131072\t6291456\n", tcp).get("net.ipv4.tcp_rmem")).toBe("4096 131072 6291456");
  });

  test("a write reaches the group from ip_forward or conf.all, only itself from one interface's key", () => {
    expect([IP_FORWARD, "net.ipv4.conf.all.forwarding", ETH0].filter(reach(v4, "net.ipv4.conf.all.forwarding"))).toHaveLength(3);
    expect([IP_FORWARD, ETH0, "net.ipv4.conf.lo.forwarding"].filter(reach(v4, ETH0))).toEqual([ETH0]);
    expect(reach(v4, "net.ipv4.conf.default.forwarding")(ETH0)).toBe(false);
    const v6 = sysctlGroup("net.ipv6.conf.lo.forwarding");
    expect(reach(v6, "net.ipv6.conf.all.forwarding")("net.ipv6.conf.lo.forwarding")).toBe(true);
    expect(reach(v6, "net.ipv6.conf.eth0.forwarding")("net.ipv6.conf.all.forwarding")).toBe(false);
  });

  test("the kernel's rewrite: ip_forward sets every forwarding key and accept_redirects to its opposite", () => {
    expect(Object.fromEntries(written(v4, found, on(IP_FORWARD, "1")))).toEqual({
      "net.ipv4.conf.all.accept_redirects": "0",
      "net.ipv4.conf.all.forwarding": "1",
      "net.ipv4.conf.default.forwarding": "1",
      [ETH0]: "1",
      [VLAN]: "1",
      [IP_FORWARD]: "1",
    });
    expect(written(v4, found, on(ETH0, "1")).get(IP_FORWARD)).toBe("0");
    expect(written(v4, found, on("net.ipv4.conf.gone.forwarding", "1"))).toBe(found);
  });

  test("wanted values: the base, then whole-group holders, then one-key holders, the last set winning in each", () => {
    const wanted = wantedValues(v4, found, [
      on(ETH0, "0"),
      on(IP_FORWARD, "1"),
      on("net.ipv4.conf.all.accept_redirects", "1"),
      on(IP_FORWARD, "2"),
    ]);
    expect(Object.fromEntries(wanted)).toMatchObject({
      [IP_FORWARD]: "2",
      [VLAN]: "2",
      [ETH0]: "0",
      "net.ipv4.conf.all.accept_redirects": "1",
    });
  });

  test("writes: the primary first when it changes, then only what it did not already set", () => {
    const wanted = wantedValues(v4, found, [on(IP_FORWARD, "1"), on(ETH0, "0")]);
    expect(writesFor(v4, wanted, found)).toEqual(["net.ipv4.ip_forward=1", `${ETH0}=0`]);
    // The primary is right already: each member that differs, alone (ip_forward is never rewritten by the same value).
    expect(writesFor(v4, wantedValues(v4, found, [on(VLAN, "0")]), found)).toEqual([`${VLAN}=0`]);
    expect(
      writesFor(sysctlGroup("net.core.somaxconn"), new Map([["net.core.somaxconn", "4096"]]), new Map([["net.core.somaxconn", "4096"]])),
    ).toEqual([]);
  });

  for (const leavesFirst of ["X", "Y"] as const) {
    test(`two stacks, X on ip_forward=1 and Y on eth0=0, join in both orders; ${leavesFirst} leaves first; the last restores`, () => {
      for (const joinOrder of [
        ["X", "Y"],
        ["Y", "X"],
      ]) {
        const holdings: Record<string, SysctlHolding> = { X: on(IP_FORWARD, "1"), Y: on(ETH0, "0") };
        let state: ReturnType<typeof step> = { record: undefined, values: found, writes: [] };
        for (const token of joinOrder) state = step(state, token, holdings[token]);
        // Joining X after Y keeps eth0 as Y holds it, though ip_forward rewrote it.
        expect(Object.fromEntries(state.values)).toEqual({ ...Object.fromEntries(written(v4, found, on(IP_FORWARD, "1"))), [ETH0]: "0" });
        expect(state.record!.original).toEqual(Object.fromEntries(found));

        state = step(state, leavesFirst);
        if (leavesFirst === "X") {
          // Everything back as it was but Y's key.
          expect(state.writes).toEqual([`${IP_FORWARD}=0`, `${VLAN}=1`]);
          expect(state.record).toEqual({ identity: "host", holders: { Y: on(ETH0, "0") }, original: { [ETH0]: "0" } });
        } else {
          // X's write reaches eth0: it goes to X's value.
          expect(state.writes).toEqual([`${ETH0}=1`]);
          expect(state.record?.holders).toEqual({ X: on(IP_FORWARD, "1") });
        }
        state = step(state, leavesFirst === "X" ? "Y" : "X");
        expect(state.record).toBeUndefined();
        expect(state.values).toEqual(found);
      }
    });
  }

  test("an interface made after ip_forward's first holder gets the primary's original, whoever joins later", () => {
    let state = step({ values: found }, "X", on(IP_FORWARD, "1"));
    // vh1 appears while forwarding is on, so it copies 1 from default.
    state = { ...state, values: new Map([...state.values, ["net.ipv4.conf.vh1.forwarding", "1"]]) };
    state = step(state, "Y", on(IP_FORWARD, "1"));
    expect(state.record!.original["net.ipv4.conf.vh1.forwarding"]).toBe("0");
    state = step(step(state, "X"), "Y");
    expect(state.values.get("net.ipv4.conf.vh1.forwarding")).toBe("0");
    expect(state.values.get(IP_FORWARD)).toBe("0");
  });

  test("a member that vanished is dropped from the record; made again, it starts over", () => {
    let state = step({ values: found }, "X", on(IP_FORWARD, "1"));
    state = step(state, "Y", on(VLAN, "0"));
    const gone = new Map([...state.values].filter(([key]) => key !== VLAN));
    state = step({ ...state, values: gone }, "X", on(IP_FORWARD, "1"));
    expect(state.record!.original).not.toHaveProperty(VLAN);
    expect(Object.keys(state.record!.holders)).toEqual(["X"]);
    // Made again (it copies default's 1): the primary's original is what a restore gives it.
    state = step({ ...state, values: new Map([...state.values, [VLAN, "1"]]) }, "X");
    expect(state.values.get(VLAN)).toBe("0");
  });

  test("an update changes the record, moves the holder last, and the last value set wins", () => {
    const somaxconn = sysctlGroup("net.core.somaxconn");
    const start = new Map([["net.core.somaxconn", "4096"]]);
    const key = "net.core.somaxconn";
    let state = step(step({ values: start }, "A", on(key, "1024"), somaxconn), "B", on(key, "8192"), somaxconn);
    expect(state.values.get(key)).toBe("8192");
    const before = JSON.stringify(state.record);
    // Same value again: nothing changes, not even the order.
    expect(step(state, "A", on(key, "1024"), somaxconn)).toMatchObject({ record: state.record, writes: [] });
    state = step(state, "A", on(key, "2048"), somaxconn);
    expect(JSON.stringify(state.record)).not.toBe(before);
    expect(Object.keys(state.record!.holders)).toEqual(["B", "A"]);
    expect(state.values.get(key)).toBe("2048");
    state = step(state, "A", undefined, somaxconn);
    expect(state.values.get(key)).toBe("8192");
    expect(step(state, "B", undefined, somaxconn)).toMatchObject({ record: undefined, writes: ["net.core.somaxconn=4096"] });
  });

  test("accept_redirects held on its own keeps its value through ip_forward's writes and restores", () => {
    const REDIRECTS = "net.ipv4.conf.all.accept_redirects";
    let state = step({ values: found }, "R", on(REDIRECTS, "1"));
    expect(state.writes).toEqual([]);
    state = step(state, "X", on(IP_FORWARD, "1"));
    expect(state.writes).toEqual([`${IP_FORWARD}=1`, `${REDIRECTS}=1`]);
    state = step(state, "X");
    expect(state.values).toEqual(found);
    expect(state.record?.holders).toEqual({ R: on(REDIRECTS, "1") });
  });

  test("an imported resource (no holder token) writes beneath the holders: what they reach stays theirs", () => {
    const onValues = written(v4, found, on(IP_FORWARD, "1"));
    // Its own `previous` goes back, with what the kernel rewrites along, but a key Y holds stays.
    const withY = step({ values: onValues }, "Y", on(ETH0, "1"));
    expect(step(withY, undefined, on(IP_FORWARD, "0")).writes).toEqual([`${IP_FORWARD}=0`, `${ETH0}=1`]);
    // A holder whose write reaches its key decides it.
    const withX = step({ values: onValues }, "X", on(IP_FORWARD, "1"));
    expect(step(withX, undefined, on(IP_FORWARD, "0")).writes).toEqual([]);
    // Alone: it puts back its previous.
    expect(step({ values: onValues }, undefined, on(IP_FORWARD, "0"))).toMatchObject({ record: undefined, writes: [`${IP_FORWARD}=0`] });
  });

  test("a holder that was never recorded (a reboot cleared /run) restores nothing; records of another namespace are ignored", () => {
    const onValues = written(v4, found, on(IP_FORWARD, "1"));
    expect(settle(v4, undefined, "host", onValues, "A", undefined)).toEqual({ next: undefined, writes: [] });
    const stale: SysctlRecord = { identity: "old", holders: { A: on(IP_FORWARD, "1") }, original: Object.fromEntries(found) };
    expect(settle(v4, stale, "host", onValues, "A", undefined)).toEqual({ next: undefined, writes: [] });
    expect(settle(v4, stale, "host", onValues, "B", on(IP_FORWARD, "1")).next?.original[IP_FORWARD]).toBe("1");
  });
});

test("veth peers: named in one namespace, cross-indexed across two", () => {
  const end = (name: string, ifindex: number, peer: LinkState["peer"]): LinkState => ({
    name,
    ifindex,
    kind: "veth",
    mtu: 1500,
    up: true,
    peer,
  });
  expect(arePeers(end("a", 3, { name: "b", otherNamespace: false }), end("b", 2, { name: "a", otherNamespace: false }), true)).toBe(true);
  expect(arePeers(end("a", 3, { name: "x", otherNamespace: false }), end("b", 2, { name: "y", otherNamespace: false }), true)).toBe(false);
  expect(arePeers(end("a", 4, { ifindex: 2, otherNamespace: true }), end("b", 2, { ifindex: 4, otherNamespace: true }), false)).toBe(true);
  expect(arePeers(end("a", 4, { ifindex: 2, otherNamespace: true }), end("b", 2, { ifindex: 5, otherNamespace: true }), false)).toBe(false);
  expect(
    arePeers(
      end("a", 4, { ifindex: 2, otherNamespace: true }),
      { ...end("b", 2, { ifindex: 4, otherNamespace: true }), kind: "bridge" },
      false,
    ),
  ).toBe(false);
});
