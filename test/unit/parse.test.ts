/** Parsers of `ip -j` output and address helpers, on captured output. */
import { canonicalAddress, canonicalCidr, isNetworkAddress, networkOf, parseCidr } from "../../provider/fields";
import { parseLinks, parseNamespaces } from "../../provider/iproute";
import { isOwnedBy, parseListing, ruleAddress, ruleNetwork, splitRuleLine } from "../../provider/iptables";
import { parseAddresses, parseAddressState, routesToRestore, sameSubnet } from "../../provider/kinds/address";
import { parseEndpoint } from "../../provider/kinds/portForward";
import { parseRoutes } from "../../provider/kinds/route";

test("links: index, kind, mtu, up, master, and a veth's peer by name (same namespace) or by index (another one)", () => {
  const out = JSON.stringify([
    {
      ifindex: 5,
      link: "veth-red",
      ifname: "veth-red-br",
      flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
      mtu: 1500,
      master: "v-net-0",
      linkinfo: { info_kind: "veth" },
    },
    { ifindex: 6, ifname: "v-net-0", flags: ["BROADCAST", "MULTICAST"], mtu: 1400, linkinfo: { info_kind: "bridge" } },
    { ifindex: 4, link_index: 2, ifname: "vc", flags: [], mtu: 1500, link_netnsid: 0, linkinfo: { info_kind: "veth" } },
  ]);
  expect(parseLinks(out)).toEqual([
    {
      name: "veth-red-br",
      ifindex: 5,
      kind: "veth",
      mtu: 1500,
      up: true,
      master: "v-net-0",
      peer: { name: "veth-red", ifindex: undefined, otherNamespace: false },
    },
    { name: "v-net-0", ifindex: 6, kind: "bridge", mtu: 1400, up: false, master: undefined, peer: undefined },
    {
      name: "vc",
      ifindex: 4,
      kind: "veth",
      mtu: 1500,
      up: false,
      master: undefined,
      peer: { name: undefined, ifindex: 2, otherNamespace: true },
    },
  ]);
  expect(parseLinks("")).toEqual([]);
});

test("namespaces, addresses", () => {
  expect(parseNamespaces('[{"name":"blue","id":1},{"name":"red"}]\n')).toEqual(["blue", "red"]);
  expect(parseNamespaces("")).toEqual([]);
  const addr = JSON.stringify([
    {
      ifname: "v-net-0",
      addr_info: [
        { family: "inet", local: "192.168.15.5", prefixlen: 24 },
        { family: "inet6", local: "2001:db8::5", prefixlen: 64 },
      ],
    },
  ]);
  expect(parseAddresses(addr)).toEqual(["192.168.15.5/24", "2001:db8::5/64"]);
  expect(canonicalCidr("2001:DB8:0:0:0::5/64")).toBe("2001:db8::5/64");
});

test("routes: default, host routes without a prefix, metrics", () => {
  const out = JSON.stringify([
    { dst: "default", gateway: "192.168.15.5", dev: "veth-red", flags: [] },
    { dst: "192.168.15.0/24", dev: "veth-red", protocol: "kernel", scope: "link", prefsrc: "192.168.15.1", flags: [] },
    { dst: "10.1.2.3", dev: "veth-red", metric: 7, flags: [] },
  ]);
  expect(parseRoutes(out, 4)).toEqual([
    { destination: "default", via: "192.168.15.5", device: "veth-red", source: undefined, metric: 0 },
    { destination: "192.168.15.0/24", via: undefined, device: "veth-red", source: "192.168.15.1", metric: 0 },
    { destination: "10.1.2.3/32", via: undefined, device: "veth-red", source: undefined, metric: 7 },
  ]);
});

test("CIDRs need a prefix; networks need zero host bits", () => {
  expect(parseCidr("192.168.15.1")).toBeUndefined();
  expect(parseCidr("192.168.15.1/33")).toBeUndefined();
  expect(parseCidr("10.0.0.1/8")).toEqual({ address: "10.0.0.1", prefix: 8, family: 4 });
  expect(isNetworkAddress(parseCidr("192.168.15.0/24")!)).toBe(true);
  expect(isNetworkAddress(parseCidr("192.168.15.1/24")!)).toBe(false);
  expect(isNetworkAddress(parseCidr("2001:db8::/32")!)).toBe(true);
  expect(isNetworkAddress(parseCidr("2001:db8::1/64")!)).toBe(false);
  expect(isNetworkAddress(parseCidr("::ffff:10.0.0.0/104")!)).toBe(true);
});

test("addresses in the kernel's spelling (glibc inet_ntop), idempotent", () => {
  const cases: [string, string][] = [
    ["FE80::1", "fe80::1"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"], // a single zero group stays
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // equal runs: the first one shrinks
    ["0:0:0:0:0:0:0:0", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["::FFFF:10.0.0.1", "::ffff:10.0.0.1"],
    ["::ffff:a00:1", "::ffff:10.0.0.1"],
    ["::10.0.0.1", "::10.0.0.1"],
    ["64:ff9b::10.0.0.1", "64:ff9b::a00:1"],
    ["192.168.15.1", "192.168.15.1"],
  ];
  for (const [input, kernel] of cases) {
    expect([input, canonicalAddress(input)]).toEqual([input, kernel]);
    expect(canonicalAddress(kernel)).toBe(kernel);
  }
  expect(networkOf(parseCidr("10.0.0.1/24")!)).toBe("10.0.0.0/24");
  expect(networkOf(parseCidr("10.255.255.255/0")!)).toBe("0.0.0.0/0");
  expect(networkOf(parseCidr("2001:DB8::1/64")!)).toBe("2001:db8::/64");
  expect(networkOf(parseCidr("10.0.0.1/32")!)).toBe("10.0.0.1/32");
});

test("port forward targets", () => {
  expect(parseEndpoint("192.168.15.2:80")).toEqual({ address: "192.168.15.2", port: 80 });
  expect(parseEndpoint("192.168.15.2")).toEqual({ address: "192.168.15.2", port: undefined });
  expect(parseEndpoint("[2001:db8::2]:443")).toEqual({ address: "2001:db8::2", port: 443 });
  expect(parseEndpoint("192.168.15.2:0")).toBeUndefined();
  expect(parseEndpoint("192.168.15.2:99999")).toBeUndefined();
  expect(parseEndpoint("host:80")).toBeUndefined();
  expect(parseEndpoint("1.2.3.4:80; reboot")).toBeUndefined();
});

test("iptables -S listings: rules in chain order, quoted comments, exact ownership", () => {
  const listing = [
    "-P FORWARD DROP",
    "-N PULUMI-NETNS-FWD",
    '-A FORWARD -s 192.168.15.0/24 -m comment --comment "pulumi-netns:pf-abc" -j ACCEPT',
    '-A FORWARD -m comment --comment "has \\"quotes\\" and  spaces" -j DROP',
    '-A FORWARD -m comment --comment "pulumi-netns:pf-abcd" -j ACCEPT',
    "-A FORWARD -j DOCKER-USER",
    "",
  ].join("\n");
  const rules = parseListing(listing, 4, "filter");
  expect(rules.map((r) => r.spec)).toEqual([
    ["-s", "192.168.15.0/24", "-m", "comment", "--comment", "pulumi-netns:pf-abc", "-j", "ACCEPT"],
    ["-m", "comment", "--comment", 'has "quotes" and  spaces', "-j", "DROP"],
    ["-m", "comment", "--comment", "pulumi-netns:pf-abcd", "-j", "ACCEPT"],
    ["-j", "DOCKER-USER"],
  ]);
  expect(rules[0]).toMatchObject({ family: 4, table: "filter", chain: "FORWARD" });
  expect(rules.filter((r) => isOwnedBy(r, "pf-abc"))).toEqual([rules[0]]);
  expect(rules.filter((r) => isOwnedBy(r, "pf-ab"))).toEqual([]);
  // The mark counts only as a comment, not as any word.
  expect(isOwnedBy({ family: 4, table: "filter", chain: "X", spec: ["-j", "pulumi-netns:pf-abc"] }, "pf-abc")).toBe(false);
  expect(splitRuleLine('-A X -m comment --comment ""')).toEqual(["-A", "X", "-m", "comment", "--comment", ""]);
});

test("rule addresses are spelled as iptables prints them", () => {
  expect(ruleAddress("192.168.15.2")).toBe("192.168.15.2/32");
  expect(ruleAddress("2001:DB8:0:0::2")).toBe("2001:db8::2/128");
  expect(ruleNetwork("2001:DB8::/64")).toBe("2001:db8::/64");
});

test("an address's state: tentative while duplicate address detection runs, carrier from the link", () => {
  const out = JSON.stringify([
    {
      ifname: "va",
      flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
      addr_info: [
        { family: "inet6", local: "fd00:91::2", prefixlen: 64, tentative: true },
        { family: "inet6", local: "fd00:91::3", prefixlen: 64, tentative: true, dadfailed: true },
        { family: "inet", local: "10.91.0.2", prefixlen: 24 },
      ],
    },
  ]);
  expect(parseAddressState(out, "FD00:91::2/64")).toEqual({ tentative: true, dadFailed: false, carrier: true });
  expect(parseAddressState(out, "fd00:91::3/64")).toEqual({ tentative: true, dadFailed: true, carrier: true });
  expect(parseAddressState(out, "10.91.0.2/24")).toEqual({ tentative: false, dadFailed: false, carrier: true });
  expect(parseAddressState(out, "10.91.0.2/16")).toBeUndefined();
});

test("the IPv4 addresses a primary takes with it when deleted: the same subnet only", () => {
  const onDevice = ["10.91.0.2/24", "10.91.0.3/24", "10.91.1.2/24", "10.91.0.4/25", "fd00:91::2/64"];
  expect(sameSubnet(onDevice, "10.91.0.2/24")).toEqual(["10.91.0.3/24"]);
  expect(sameSubnet(onDevice, "fd00:91::3/64")).toEqual([]);
});

test("routes a device's last IPv4 address takes with it, and which of them come back", () => {
  const before = JSON.stringify([
    { dst: "10.91.0.0/24", protocol: "kernel", scope: "link", prefsrc: "10.91.0.2", flags: [] },
    { dst: "10.92.0.0/16", scope: "link", metric: 5, flags: [] },
    { dst: "10.93.0.0/16", gateway: "10.91.0.1", flags: ["onlink"] },
    { dst: "10.94.0.0/16", scope: "link", prefsrc: "10.91.0.2", flags: [] },
    { dst: "10.95.0.0/16", scope: "link", table: "7", protocol: "static", flags: [] },
    { type: "local", dst: "10.91.0.2", table: "local", protocol: "kernel", scope: "host", prefsrc: "10.91.0.2", flags: [] },
  ]);
  const spec = { namespace: "red", device: "va", address: "10.91.0.2/24" };
  expect(routesToRestore(before, "[]", spec)).toEqual([
    ["ip", "-n", "red", "-4", "route", "replace", "10.92.0.0/16", "dev", "va", "scope", "link", "metric", "5"],
    ["ip", "-n", "red", "-4", "route", "replace", "10.93.0.0/16", "via", "10.91.0.1", "dev", "va", "onlink"],
    ["ip", "-n", "red", "-4", "route", "replace", "10.95.0.0/16", "dev", "va", "proto", "static", "scope", "link", "table", "7"],
  ]);
  expect(routesToRestore(before, before, spec)).toEqual([]);
});
