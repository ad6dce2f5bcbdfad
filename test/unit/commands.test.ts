/** Pure command building: exact argv arrays, as CNI's portmap tests its rules. */
import { byNamespace, inEveryNamespace, inNamespace, isReadCommand } from "../../provider/host";
import { linkDeleteArgv, linkSetArgv, linkShowArgv } from "../../provider/iproute";
import { desiredLines, forwardJump, jumpPlacement, listArgv, ownerComment, renderRule, ruleArgv } from "../../provider/iptables";
import { addressArgv, deviceRoutesArgv } from "../../provider/kinds/address";
import { bridgeAddArgv, pinMtuArgvs } from "../../provider/kinds/bridge";
import { probeArgv } from "../../provider/kinds/check";
import { masqueradeRules } from "../../provider/kinds/masquerade";
import { portForwardConntrackFlush, portForwardRules } from "../../provider/kinds/portForward";
import { netemDeleteArgv, netemReplaceArgv, netemShowArgv } from "../../provider/kinds/netem";
import { routeArgv } from "../../provider/kinds/route";
import { serviceDirectory, statusArgv, stopArgv } from "../../provider/kinds/service";
import { sysctlGroup, sysctlReadArgv, sysctlWritesArgv } from "../../provider/kinds/sysctl";
import { vethAddArgv } from "../../provider/kinds/veth";
import { floodEntryArgv, floodShowArgv } from "../../provider/kinds/vxlan";
import { shellLine, shellQuote } from "../../provider/shell";

test("shell quoting leaves plain words alone and makes everything else one literal word", () => {
  expect(shellQuote("veth-red")).toBe("veth-red");
  expect(shellQuote("192.168.15.1/24")).toBe("192.168.15.1/24");
  expect(shellQuote("")).toBe("''");
  expect(shellQuote("a b")).toBe("'a b'");
  expect(shellQuote("it's")).toBe("'it'\\''s'");
  expect(shellQuote("$(reboot)")).toBe("'$(reboot)'");
  expect(shellLine(["printf", "%s", "a;b"])).toBe("printf %s 'a;b'");
  expect(() => shellLine([])).toThrow();
});

test("namespaced commands: ip and bridge take -n, anything else goes through ip netns exec", () => {
  expect(inNamespace("red", ["ip", "link", "show"])).toEqual(["ip", "-n", "red", "link", "show"]);
  expect(inNamespace("red", ["bridge", "-j", "fdb", "show"])).toEqual(["bridge", "-n", "red", "-j", "fdb", "show"]);
  expect(inNamespace("red", ["iptables", "-S"])).toEqual(["ip", "netns", "exec", "red", "iptables", "-S"]);
  expect(inNamespace(undefined, ["iptables", "-S"])).toEqual(["iptables", "-S"]);
});

test("veth: both ends, each in its namespace, in one command run where the first-named end belongs", () => {
  // An end in the host's own namespace is named first (that namespace has no name to give as netns).
  expect(vethAddArgv({ name: "veth-red", namespace: "red", mtu: 1400, up: true, peer: { name: "veth-red-br", up: true } })).toEqual([
    "ip",
    "link",
    "add",
    "name",
    "veth-red-br",
    "mtu",
    "1400",
    "type",
    "veth",
    "peer",
    "name",
    "veth-red",
    "netns",
    "red",
    "mtu",
    "1400",
  ]);
  expect(vethAddArgv({ name: "a", up: true, peer: { name: "b", namespace: "blue", up: true } })).toEqual([
    "ip",
    "link",
    "add",
    "name",
    "a",
    "type",
    "veth",
    "peer",
    "name",
    "b",
    "netns",
    "blue",
  ]);
  // Both namespaced: run inside the first end's, so an "eth0" of the host's own does not collide.
  expect(vethAddArgv({ name: "eth0", namespace: "db", up: true, peer: { name: "eth1", namespace: "web", up: true } })).toEqual([
    "ip",
    "-n",
    "db",
    "link",
    "add",
    "name",
    "eth0",
    "type",
    "veth",
    "peer",
    "name",
    "eth1",
    "netns",
    "web",
  ]);
  expect(vethAddArgv({ name: "a", up: true, peer: { name: "b", up: true } })).toEqual([
    "ip",
    "link",
    "add",
    "name",
    "a",
    "type",
    "veth",
    "peer",
    "name",
    "b",
  ]);
});

test("bridge, link set, address, route, sysctl", () => {
  expect(bridgeAddArgv({ name: "v-net-0" })).toEqual(["ip", "link", "add", "name", "v-net-0", "type", "bridge"]);
  expect(bridgeAddArgv({ name: "br0", namespace: "lab" })).toEqual(["ip", "-n", "lab", "link", "add", "name", "br0", "type", "bridge"]);
  expect(pinMtuArgvs("lab", "br0", 1500)).toEqual([
    ["ip", "-n", "lab", "link", "set", "dev", "br0", "mtu", "1499"],
    ["ip", "-n", "lab", "link", "set", "dev", "br0", "mtu", "1500"],
  ]);
  expect(linkSetArgv(undefined, "veth-red-br", { master: "v-net-0", up: true })).toEqual([
    "ip",
    "link",
    "set",
    "dev",
    "veth-red-br",
    "master",
    "v-net-0",
    "up",
  ]);
  expect(linkSetArgv("red", "x", { mtu: 1300, up: false })).toEqual(["ip", "-n", "red", "link", "set", "dev", "x", "mtu", "1300", "down"]);
  expect(addressArgv("add", { namespace: "red", device: "veth-red", address: "192.168.15.1/24" })).toEqual([
    "ip",
    "-n",
    "red",
    "addr",
    "add",
    "192.168.15.1/24",
    "dev",
    "veth-red",
  ]);
  expect(routeArgv("add", { namespace: "red", destination: "default", via: "192.168.15.5" })).toEqual([
    "ip",
    "-n",
    "red",
    "-4",
    "route",
    "add",
    "default",
    "via",
    "192.168.15.5",
  ]);
  expect(routeArgv("del", { destination: "2001:db8::/64", device: "eth1", metric: 10 })).toEqual([
    "ip",
    "-6",
    "route",
    "del",
    "2001:db8::/64",
    "dev",
    "eth1",
    "metric",
    "10",
  ]);
  expect(routeArgv("add", { destination: "10.0.0.0/8", via: "192.168.15.5", source: "192.168.15.1" })).toEqual([
    "ip",
    "-4",
    "route",
    "add",
    "10.0.0.0/8",
    "via",
    "192.168.15.5",
    "src",
    "192.168.15.1",
  ]);
  expect(routeArgv("add", { destination: "default", via: "fe80::1", device: "eth0" })[1]).toBe("-6");
  expect(sysctlWritesArgv(["net.ipv4.ip_forward=0", "net.ipv4.conf.lo.forwarding=1"])).toEqual([
    "sysctl",
    "-e",
    "-q",
    "-w",
    "net.ipv4.ip_forward=0",
    "net.ipv4.conf.lo.forwarding=1",
  ]);
});

test("read-only runs: only a fixed list of read verbs, looked through namespace wrappers", () => {
  const reads = [
    linkShowArgv("red", "eth0"),
    linkShowArgv(undefined, "eth0"),
    ["ip", "-j", "netns", "list"],
    ["ip", "-j", "link", "show", "master", "br0"],
    ["ip", "-4", "-j", "route", "show", "exact", "10.0.0.0/8", "table", "main"],
    deviceRoutesArgv({ device: "eth0", address: "10.0.0.2/24", namespace: "red" }),
    inNamespace("red", ["ip", "-j", "addr", "show", "dev", "eth0"]),
    netemShowArgv({ device: "eth0", namespace: "red" }),
    sysctlReadArgv("net.ipv4.conf.eth0/100.forwarding", "red"),
    ["sysctl", "-n", "net/ipv4/conf/vx@0/promote_secondaries"],
    inNamespace("red", ["sysctl", ...sysctlGroup("net.ipv4.ip_forward").readArgs]),
    inNamespace(undefined, ["sysctl", ...sysctlGroup("net.ipv6.conf.all.forwarding").readArgs]),
    ["cat", "/run/pulumi-netns/sysctl/host/ipv4-forwarding"],
    ["stat", "-L", "-c", "%i %z", "/var/run/netns/red"],
    floodShowArgv("red", "vx0"),
    floodShowArgv(undefined, "vx0"),
    // Scripts declared read-only: a Check's probe, a Service's status.
    probeArgv("red", [{ protocol: "icmp", address: "10.0.0.1", expect: "reachable" }], 3, 2),
    statusArgv(serviceDirectory("red", "web")),
  ];
  for (const argv of reads) expect([shellLine(argv), isReadCommand(argv)]).toEqual([shellLine(argv), true]);
  const writes = [
    sysctlWritesArgv(["net.ipv4.ip_forward=0"], "red"),
    ["sysctl", "net.ipv4.ip_forward=1"],
    ["sysctl", "-r", "forwarding", "net.ipv4.ip_forward=1"],
    ["sysctl", "-p"],
    // A second -r is the first one's pattern; -p then loads /etc/sysctl.conf.
    ["sysctl", "-r", "-r", "-p"],
    ["sysctl", "-r", "forwarding", "--system"],
    ["sysctl", "-r"],
    linkSetArgv("red", "eth0", { up: true }),
    linkDeleteArgv(undefined, "eth0"),
    addressArgv("add", { device: "eth0", address: "10.0.0.2/24", namespace: "red" }),
    vethAddArgv({ name: "a", up: true, peer: { name: "b", up: true } }),
    routeArgv("replace", { destination: "default", via: "10.0.0.1" }),
    netemReplaceArgv({
      device: "eth0",
      delayMs: 1,
      jitterMs: 0,
      lossPercent: 0,
      corruptPercent: 0,
      duplicatePercent: 0,
      reorderPercent: 0,
      rateKbit: 0,
    }),
    netemDeleteArgv({ device: "eth0", namespace: "red" }),
    ["ip", "netns", "add", "red"],
    floodEntryArgv("append", "red", "vx0", "192.0.2.2"),
    ["bridge", "-n", "red", "fdb", "del", "00:00:00:00:00:00", "dev", "vx0"],
    ["ip", "-batch", "/tmp/commands"],
    ["ip", "-n", "red", "-batch", "/tmp/commands"],
    ["ip", "netns", "exec", "red", "sh", "-c", "cat /etc/hostname"],
    ["ip", "netns", "exec", "red"],
    // A script not declared read-only, and one that is, given as a file to run or after other words.
    stopArgv("red", "web", 10, undefined),
    ["sh", statusArgv("/run/x")[2]],
    ["sh", "-e", "-c", statusArgv("/run/x")[2]],
    // Reads, but not on the list: a listing has its own option.
    listArgv(4, "nat", "POSTROUTING"),
    inEveryNamespace(["ip", "-j", "-d", "addr", "show"]),
  ];
  for (const argv of writes) expect([shellLine(argv), isReadCommand(argv)]).toEqual([shellLine(argv), false]);
});

test("masquerade rules carry the owner comment, in iptables -S form; FORWARD accepts go to the shared chain", () => {
  const rules = masqueradeRules({ source: "192.168.15.0/24", acceptForward: true }, ownerComment("masq-1"));
  expect(desiredLines(rules)).toEqual([
    "iptables -t nat -A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -m comment --comment pulumi-netns:masq-1 -j MASQUERADE",
    "iptables -t filter -A PULUMI-NETNS-FWD -s 192.168.15.0/24 -m comment --comment pulumi-netns:masq-1 -j ACCEPT",
    "iptables -t filter -A PULUMI-NETNS-FWD -d 192.168.15.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment pulumi-netns:masq-1 -j ACCEPT",
    "iptables -t filter -A FORWARD -j PULUMI-NETNS-FWD",
  ]);
  expect(ruleArgv("-D", rules[0], "router")).toEqual([
    "ip",
    "netns",
    "exec",
    "router",
    "iptables",
    "-w",
    "10",
    "-t",
    "nat",
    "-D",
    "POSTROUTING",
    "-s",
    "192.168.15.0/24",
    "!",
    "-d",
    "192.168.15.0/24",
    "-m",
    "comment",
    "--comment",
    "pulumi-netns:masq-1",
    "-j",
    "MASQUERADE",
  ]);
  expect(ruleArgv("-I", forwardJump(6), undefined, 2)).toEqual([
    "ip6tables",
    "-w",
    "10",
    "-t",
    "filter",
    "-I",
    "FORWARD",
    "2",
    "-j",
    "PULUMI-NETNS-FWD",
  ]);
  expect(listArgv(4, "nat", "POSTROUTING", "red")).toEqual([
    "ip",
    "netns",
    "exec",
    "red",
    "iptables",
    "-w",
    "10",
    "-t",
    "nat",
    "-S",
    "POSTROUTING",
  ]);
  const out = masqueradeRules({ source: "2001:DB8:0::/64", outInterface: "eth0", acceptForward: false }, ownerComment("m"));
  expect(desiredLines(out)).toEqual([
    "ip6tables -t nat -A POSTROUTING -s 2001:db8::/64 ! -d 2001:db8::/64 -o eth0 -m comment --comment pulumi-netns:m -j MASQUERADE",
  ]);
});

test("port forward rules always name the protocol, catch only traffic to the host, and cover local traffic but loopback", () => {
  const rules = portForwardRules(
    { protocol: "tcp", port: 80, to: "192.168.15.2:8080", acceptForward: true, fromHost: true },
    ownerComment("pf-1"),
  );
  expect(desiredLines(rules)).toEqual([
    "iptables -t nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment pulumi-netns:pf-1 -j DNAT --to-destination 192.168.15.2:8080",
    "iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment pulumi-netns:pf-1 -j DNAT --to-destination 192.168.15.2:8080",
    "iptables -t filter -A PULUMI-NETNS-FWD -d 192.168.15.2/32 -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT -m comment --comment pulumi-netns:pf-1 -j ACCEPT",
    "iptables -t filter -A PULUMI-NETNS-FWD -s 192.168.15.2/32 -p tcp -m tcp --sport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment pulumi-netns:pf-1 -j ACCEPT",
    "iptables -t filter -A FORWARD -j PULUMI-NETNS-FWD",
  ]);
  const scoped = portForwardRules(
    { protocol: "udp", port: 53, to: "[2001:DB8::2]", inInterface: "eth0", acceptForward: false, fromHost: true },
    ownerComment("pf-2"),
  );
  expect(desiredLines(scoped)).toEqual([
    "ip6tables -t nat -A PREROUTING -i eth0 -p udp -m addrtype --dst-type LOCAL -m udp --dport 53 -m comment --comment pulumi-netns:pf-2 -j DNAT --to-destination [2001:db8::2]:53",
  ]);
  const toAddress = portForwardRules(
    { protocol: "udp", port: 5353, to: "10.0.0.2:53", destination: "198.18.0.10", acceptForward: false, fromHost: true },
    ownerComment("pf-3"),
  );
  expect(desiredLines(toAddress)).toEqual([
    "iptables -t nat -A PREROUTING -d 198.18.0.10/32 -p udp -m udp --dport 5353 -m comment --comment pulumi-netns:pf-3 -j DNAT --to-destination 10.0.0.2:53",
    "iptables -t nat -A OUTPUT -d 198.18.0.10/32 -p udp -m udp --dport 5353 -m comment --comment pulumi-netns:pf-3 -j DNAT --to-destination 10.0.0.2:53",
  ]);
});

test("port forward hairpin: only DNATed connections from the target's own network are masqueraded", () => {
  const rules = portForwardRules(
    { protocol: "tcp", port: 80, to: "192.168.15.2", hairpinNetwork: "192.168.15.0/24", acceptForward: false, fromHost: false },
    ownerComment("pf-h"),
  );
  expect(rules.map(renderRule)).toEqual([
    "iptables -t nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -m comment --comment pulumi-netns:pf-h -j DNAT --to-destination 192.168.15.2:80",
    "iptables -t nat -A POSTROUTING -s 192.168.15.0/24 -d 192.168.15.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment --comment pulumi-netns:pf-h -j MASQUERADE",
  ]);
});

test("port forward flushes stale UDP conntrack entries of its port, in its namespace and family", () => {
  const base = { protocol: "udp" as const, port: 5353, to: "192.168.15.2:53", acceptForward: true, fromHost: true };
  expect(portForwardConntrackFlush(base)).toEqual(["conntrack", "-D", "-p", "udp", "--orig-port-dst", "5353"]);
  expect(portForwardConntrackFlush({ ...base, to: "[2001:db8::2]:53", destination: "2001:db8::1", namespace: "router" })).toEqual([
    "ip",
    "netns",
    "exec",
    "router",
    "conntrack",
    "-D",
    "-f",
    "ipv6",
    "-p",
    "udp",
    "--orig-dst",
    "2001:db8::1",
    "--orig-port-dst",
    "5353",
  ]);
  expect(portForwardConntrackFlush({ ...base, protocol: "tcp" })).toBeUndefined();
});

test("the shared FORWARD jump goes right after DOCKER-USER, else first", () => {
  const rule = (...spec: string[]) => ({ family: 4 as const, table: "filter" as const, chain: "FORWARD", spec });
  const dockerUser = rule("-j", "DOCKER-USER");
  const ours = rule("-j", "PULUMI-NETNS-FWD");
  const other = rule("-o", "docker0", "-j", "DOCKER");
  expect(jumpPlacement([])).toEqual({ placed: false, position: 1 });
  expect(jumpPlacement([other])).toEqual({ placed: false, position: 1 });
  expect(jumpPlacement([ours, other])).toEqual({ placed: true, position: 1 });
  expect(jumpPlacement([dockerUser, other])).toEqual({ placed: false, position: 2 });
  expect(jumpPlacement([dockerUser, ours, other])).toEqual({ placed: true, position: 2 });
  expect(jumpPlacement([other, dockerUser, other, ours])).toEqual({ placed: true, position: 3 });
  // Ahead of DOCKER-USER it would bypass the administrator's policy.
  expect(jumpPlacement([ours, dockerUser])).toEqual({ placed: false, position: 3 });
  // A conditional jump to our chain is not the shared jump.
  expect(jumpPlacement([rule("-i", "eth0", "-j", "PULUMI-NETNS-FWD")])).toEqual({ placed: false, position: 1 });
});

describe("listings of every namespace", () => {
  test("one command per part: the part, the last characters it leaves to the others and the argv are the loop's arguments", () => {
    const [sh, flag, script, name, ...args] = inEveryNamespace(["ip", "-j", "-d", "addr", "show"], 1, 2);
    expect([sh, flag, name, ...args]).toEqual([
      "sh",
      "-c",
      "sh",
      "1",
      "[!13579BDFHJLNPRTVXZbdfhjlnprtvxz]",
      "ip",
      "-j",
      "-d",
      "addr",
      "show",
    ]);
    // Part 0 takes the rest, and the host's own namespace; a listing in one part skips nothing.
    expect(inEveryNamespace(["ip", "link", "show"], 0, 2)[5]).toBe("[13579BDFHJLNPRTVXZbdfhjlnprtvxz]");
    expect(inEveryNamespace(["ip", "link", "show"], 0, 3)[5]).toBe("[124578ABDEGHJKMNPQSTVWYZbcefhiklnoqrtuwxz]");
    expect(inEveryNamespace(["ip", "link", "show"])[5]).toBe("");
    // ip takes the namespace as a flag; anything else runs through `ip netns exec`, as inNamespace does.
    expect(script).toContain('"$program" -n "$ns" "$@" && echo pulumi-netns-listed');
    const iptables = inEveryNamespace(["iptables", "-w", "10", "-t", "nat", "-S"]);
    expect(iptables.slice(3)).toEqual(["sh", "0", "", "iptables", "-w", "10", "-t", "nat", "-S"]);
    expect(iptables[2]).toContain('ip netns exec "$ns" "$program" "$@" && echo pulumi-netns-listed');
  });

  const result = (stdout: string, stderr = "") => ({ command: "list", exitCode: 0, stdout, stderr, durationMs: 1 });

  test("the output splits by namespace; a namespace not listed does not exist", () => {
    const parts = byNamespace(
      result("netns: \n[1]\npulumi-netns-listed\n\nnetns: red\n[2]\npulumi-netns-listed\n\nnetns: blue\n\npulumi-netns-listed\n"),
    );
    expect([...parts]).toEqual([
      ["", "[1]\n"],
      ["red", "[2]\n"],
      ["blue", "\n"],
    ]);
    expect(byNamespace(result("netns: \n[]\npulumi-netns-listed\n")).get("red")).toBeUndefined();
    // A part without the host's own namespace.
    expect([...byNamespace(result("\nnetns: red\n[2]\npulumi-netns-listed\n"))]).toEqual([["red", "[2]\n"]]);
  });

  test("a namespace whose part did not finish fails its own reads, naming it (its objects are unknown, not gone); the others read", () => {
    const listing = byNamespace(result("netns: \n[1]\npulumi-netns-listed\n\nnetns: red\n", "iptables: lock timeout"));
    expect(() => listing.get("red")).toThrow(/listing failed in red: list: iptables: lock timeout/);
    expect(listing.get("")).toBe("[1]\n");
    expect([...listing.keys()]).toEqual([""]);
    const hostFailed = byNamespace(result("netns: \n\nnetns: red\n[]\npulumi-netns-listed\n"));
    expect(() => hostFailed.get("")).toThrow(/listing failed in the host's own namespace/);
    expect(hostFailed.get("red")).toBe("[]\n");
  });
});
