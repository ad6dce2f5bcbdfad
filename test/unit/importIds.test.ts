/** `pulumi import` ids: what each kind's id names, exactly, and the error a malformed one gets. Pure. */
import { importIdentity } from "../../provider/controller";
import { kindNamed } from "../../provider/kinds";

const identity = (kind: string, id: string) => importIdentity(kindNamed(kind), id);

test("namespaces, bridges and nodes are named; a bridge in a namespace names it first", () => {
  expect(identity("Namespace", "red")).toEqual({ name: "red" });
  expect(identity("LabNode", "lab-gw")).toEqual({ name: "lab-gw" });
  expect(identity("Bridge", "v-net-0")).toEqual({ name: "v-net-0" });
  expect(identity("Bridge", "red/br0")).toEqual({ namespace: "red", name: "br0" });
  expect(identity("Bridge", "/br0")).toEqual({ name: "br0" });
});

test("devices and keys are NAMESPACE/NAME, with an empty namespace for the host's own", () => {
  expect(identity("Veth", "red/veth-red")).toEqual({ namespace: "red", name: "veth-red" });
  expect(identity("Veth", "/veth-red-br")).toEqual({ name: "veth-red-br" });
  expect(identity("Vxlan", "red/vx0")).toEqual({ namespace: "red", name: "vx0" });
  expect(identity("Netem", "/eth1")).toEqual({ device: "eth1" });
  expect(identity("Sysctl", "/net.ipv4.ip_forward")).toEqual({ key: "net.ipv4.ip_forward" });
  expect(identity("Sysctl", "red/net.ipv6.conf.all.forwarding")).toEqual({ namespace: "red", key: "net.ipv6.conf.all.forwarding" });
});

test("an address is NAMESPACE/DEVICE/ADDRESS/PREFIX, in the kernel's spelling", () => {
  expect(identity("Address", "red/veth-red/192.168.15.1/24")).toEqual({ namespace: "red", device: "veth-red", address: "192.168.15.1/24" });
  expect(identity("Address", "/v-net-0/2001:DB8::5/64")).toEqual({ device: "v-net-0", address: "2001:db8::5/64" });
});

test("a route is NAMESPACE/DESTINATION/METRIC; default is IPv4's, ::/0 and 0.0.0.0/0 name a family", () => {
  expect(identity("Route", "red/default/0")).toEqual({ namespace: "red", destination: "default", metric: 0 });
  expect(identity("Route", "/10.92.0.0/16/100")).toEqual({ destination: "10.92.0.0/16", metric: 100 });
  expect(identity("Route", "red/::/0/1024")).toEqual({ namespace: "red", destination: "default", family: 6, metric: 1024 });
  expect(identity("Route", "/0.0.0.0/0/5")).toEqual({ destination: "default", family: 4, metric: 5 });
});

test("rules are named by their mark, or when made by hand by what identifies them", () => {
  expect(identity("Masquerade", "masq-3f9a1c2b0d4e5f60@lab/dev")).toEqual({});
  // A resource made without an owner.
  expect(identity("Masquerade", "masq-0a1b2c3d4e5f6071")).toEqual({});
  expect(identity("Masquerade", "192.168.15.0/24")).toEqual({ source: "192.168.15.0/24" });
  expect(identity("Masquerade", "red/2001:DB8::/64")).toEqual({ namespace: "red", source: "2001:db8::/64" });
  expect(identity("PortForward", "pf-3f9a1c2b0d4e5f60@lab/dev")).toEqual({});
  expect(identity("PortForward", "tcp/80")).toEqual({ protocol: "tcp", port: 80 });
  expect(identity("PortForward", "red/udp/53")).toEqual({ namespace: "red", protocol: "udp", port: 53 });
});

test("a malformed id is refused naming the form the kind's ids take", () => {
  expect(() => identity("Veth", "veth-red")).toThrow('Veth id must be [NAMESPACE]/NAME (either end); got "veth-red"');
  expect(() => identity("Veth", "red/")).toThrow('Veth id must be [NAMESPACE]/NAME (either end); got "red/"');
  expect(() => identity("Address", "red/veth-red")).toThrow('Address id must be [NAMESPACE]/DEVICE/ADDRESS/PREFIX; got "red/veth-red"');
  expect(() => identity("Route", "red/default")).toThrow(/^Route id must be \[NAMESPACE\]\/DESTINATION\/METRIC .*; got "red\/default"$/);
  expect(() => identity("Masquerade", "masq-lab")).toThrow(
    'Masquerade id must be masq-MARK (rules pulumi-netns made, by their mark) or [NAMESPACE/]SOURCE (rules made by hand); got "masq-lab"',
  );
  expect(() => identity("PortForward", "sctp/80")).toThrow(
    /^PortForward id must be pf-MARK .* or \[NAMESPACE\/\]PROTOCOL\/PORT \(rules made by hand\); got "sctp\/80"$/,
  );
});

test("a part that is no valid value is refused naming the property", () => {
  expect(() => identity("Veth", "red/a/b")).toThrow(
    /^Veth id must be \[NAMESPACE\]\/NAME \(either end\); in "red\/a\/b", name: an interface name may use/,
  );
  expect(() => identity("Namespace", "no spaces")).toThrow(
    /^Namespace id must be NAME; in "no spaces", name: a namespace name must be a plain file name/,
  );
  expect(() => identity("Address", "/eth0/10.0.0.1")).toThrow(/in "\/eth0\/10.0.0.1", address: needs an address with a prefix length/);
  expect(() => identity("Route", "/10.0.0.1/24/0")).toThrow(/in "\/10.0.0.1\/24\/0", destination: .*use 10.0.0.0\/24/);
  expect(() => identity("Masquerade", "10.0.0.1/24")).toThrow(/in "10.0.0.1\/24", source: host bits must be zero: use 10.0.0.0\/24/);
  expect(() => identity("PortForward", "tcp/70000")).toThrow(/in "tcp\/70000", port: /);
  expect(() => identity("Sysctl", "/net..x")).toThrow(/in "\/net..x", key: must be a dotted sysctl key/);
});

test("kinds without an object of their own on the host say why they cannot be imported", () => {
  expect(() => identity("Check", "check-1")).toThrow(/^Check cannot be imported: a Check is no object on the host but probes/);
  expect(() => identity("Service", "red/web")).toThrow(
    /^Service cannot be imported: a Service's supervisor, pid records and log are what pulumi-netns makes/,
  );
});
