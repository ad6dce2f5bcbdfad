/** Pure command building: exact argv arrays, as CNI's portmap tests its rules. */
import { inNamespace } from "../../provider/host";
import { linkSetArgv } from "../../provider/iproute";
import { renderRule, ruleArgv } from "../../provider/iptables";
import { addressArgv } from "../../provider/kinds/address";
import { bridgeAddArgv } from "../../provider/kinds/bridge";
import { masqueradeRules } from "../../provider/kinds/masquerade";
import { portForwardRules } from "../../provider/kinds/portForward";
import { routeArgv } from "../../provider/kinds/route";
import { sysctlWriteArgv } from "../../provider/kinds/sysctl";
import { vethAddArgv } from "../../provider/kinds/veth";
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

test("namespaced commands: ip takes -n, anything else goes through ip netns exec", () => {
  expect(inNamespace("red", ["ip", "link", "show"])).toEqual(["ip", "-n", "red", "link", "show"]);
  expect(inNamespace("red", ["iptables", "-S"])).toEqual(["ip", "netns", "exec", "red", "iptables", "-S"]);
  expect(inNamespace(undefined, ["iptables", "-S"])).toEqual(["iptables", "-S"]);
});

test("veth: both ends, each in its namespace, in one command", () => {
  expect(
    vethAddArgv({ name: "veth-red", namespace: "red", mtu: 1400, up: true, peer: { name: "veth-red-br", up: true } }),
  ).toEqual(["ip", "link", "add", "name", "veth-red", "netns", "red", "mtu", "1400", "type", "veth", "peer", "name", "veth-red-br", "mtu", "1400"]);
  expect(vethAddArgv({ name: "a", up: true, peer: { name: "b", namespace: "blue", up: true } })).toEqual([
    "ip", "link", "add", "name", "a", "type", "veth", "peer", "name", "b", "netns", "blue",
  ]);
});

test("bridge, link set, address, route, sysctl", () => {
  expect(bridgeAddArgv({ name: "v-net-0" })).toEqual(["ip", "link", "add", "name", "v-net-0", "type", "bridge"]);
  expect(bridgeAddArgv({ name: "br0", namespace: "lab", mtu: 9000 })).toEqual([
    "ip", "-n", "lab", "link", "add", "name", "br0", "mtu", "9000", "type", "bridge",
  ]);
  expect(linkSetArgv(undefined, "veth-red-br", { master: "v-net-0", up: true })).toEqual([
    "ip", "link", "set", "dev", "veth-red-br", "master", "v-net-0", "up",
  ]);
  expect(linkSetArgv("red", "x", { mtu: 1300, up: false })).toEqual([
    "ip", "-n", "red", "link", "set", "dev", "x", "mtu", "1300", "down",
  ]);
  expect(addressArgv("add", { namespace: "red", device: "veth-red", address: "192.168.15.1/24" })).toEqual([
    "ip", "-n", "red", "addr", "add", "192.168.15.1/24", "dev", "veth-red",
  ]);
  expect(routeArgv("add", { namespace: "red", destination: "default", via: "192.168.15.5" })).toEqual([
    "ip", "-n", "red", "-4", "route", "add", "default", "via", "192.168.15.5",
  ]);
  expect(routeArgv("del", { destination: "2001:db8::/64", device: "eth1", metric: 10 })).toEqual([
    "ip", "-6", "route", "del", "2001:db8::/64", "dev", "eth1", "metric", "10",
  ]);
  expect(routeArgv("add", { destination: "10.0.0.0/8", via: "192.168.15.5", source: "192.168.15.1" })).toEqual([
    "ip", "-4", "route", "add", "10.0.0.0/8", "via", "192.168.15.5", "src", "192.168.15.1",
  ]);
  expect(routeArgv("add", { destination: "default", via: "fe80::1", device: "eth0" })[1]).toBe("-6");
  expect(sysctlWriteArgv("net.ipv4.ip_forward", "1", "red")).toEqual([
    "ip", "netns", "exec", "red", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1",
  ]);
});

test("masquerade rules carry the owner comment and FORWARD accepts come first", () => {
  const rules = masqueradeRules({ source: "192.168.15.0/24", acceptForward: true }, "masq-1");
  expect(rules.map(renderRule)).toEqual([
    "iptables -t nat -A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -m comment --comment pulumi-netns:masq-1 -j MASQUERADE",
    "iptables -t filter -I FORWARD -s 192.168.15.0/24 -m comment --comment pulumi-netns:masq-1 -j ACCEPT",
    "iptables -t filter -I FORWARD -d 192.168.15.0/24 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment pulumi-netns:masq-1 -j ACCEPT",
  ]);
  expect(ruleArgv("-D", rules[0], "router")).toEqual([
    "ip", "netns", "exec", "router", "iptables", "-w", "10", "-t", "nat", "-D", "POSTROUTING",
    "-s", "192.168.15.0/24", "!", "-d", "192.168.15.0/24", "-m", "comment", "--comment", "pulumi-netns:masq-1", "-j", "MASQUERADE",
  ]);
  const out = masqueradeRules({ source: "10.0.0.0/8", outInterface: "eth0", acceptForward: false }, "m");
  expect(out.map(renderRule)).toEqual([
    "iptables -t nat -A POSTROUTING -s 10.0.0.0/8 ! -d 10.0.0.0/8 -o eth0 -m comment --comment pulumi-netns:m -j MASQUERADE",
  ]);
});

test("port forward rules always name the protocol, catch only traffic to the host, and cover local traffic but loopback", () => {
  const rules = portForwardRules(
    { protocol: "tcp", port: 80, to: "192.168.15.2:8080", acceptForward: true, fromHost: true },
    "pf-1",
  );
  expect(rules.map(renderRule)).toEqual([
    "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 80 -m comment --comment pulumi-netns:pf-1 -j DNAT --to-destination 192.168.15.2:8080",
    "iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 80 -m comment --comment pulumi-netns:pf-1 -j DNAT --to-destination 192.168.15.2:8080",
    "iptables -t filter -I FORWARD -d 192.168.15.2 -p tcp -m tcp --dport 8080 -m conntrack --ctstate DNAT -m comment --comment pulumi-netns:pf-1 -j ACCEPT",
    "iptables -t filter -I FORWARD -s 192.168.15.2 -p tcp -m tcp --sport 8080 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment pulumi-netns:pf-1 -j ACCEPT",
  ]);
  const scoped = portForwardRules(
    { protocol: "udp", port: 53, to: "[2001:db8::2]", inInterface: "eth0", acceptForward: false, fromHost: true },
    "pf-2",
  );
  expect(scoped.map(renderRule)).toEqual([
    "ip6tables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -i eth0 -p udp -m udp --dport 53 -m comment --comment pulumi-netns:pf-2 -j DNAT --to-destination [2001:db8::2]:53",
  ]);
});
