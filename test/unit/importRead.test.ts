/** What `pulumi import` reads from a host's listings, as pure parsing: exact specs, and the refusals. */
import { parseListing } from "../../provider/iptables";
import { importedNodeSpec, NodeState } from "../../provider/kinds/labNode";
import { masqueradeCandidates } from "../../provider/kinds/masquerade";
import { portForwardCandidates } from "../../provider/kinds/portForward";
import { parseUnderlay } from "../../provider/kinds/vxlan";
import type { IpLinkJson } from "../../provider/iproute";

const nat = (lines: string[]) => parseListing(lines.join("\n"), 4, "nat");

test("a masquerade is read from its POSTROUTING rule, with and without its accepts; a port forward's hairpin is none", () => {
  const found = nat([
    "-P POSTROUTING ACCEPT",
    "-A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -o eth0 -j MASQUERADE",
    "-A POSTROUTING -s 10.0.0.0/8 -d 10.0.0.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -j MASQUERADE",
  ]);
  expect(masqueradeCandidates({ source: "192.168.15.0/24" }, found).map((c) => c.spec)).toEqual([
    { source: "192.168.15.0/24", outInterface: "eth0", acceptForward: true },
    { source: "192.168.15.0/24", outInterface: "eth0", acceptForward: false },
  ]);
  expect(masqueradeCandidates({ source: "10.0.0.0/8" }, found)).toEqual([]);
  // By its mark the source is not named: every MASQUERADE of it counts.
  expect(masqueradeCandidates({}, found)).toHaveLength(2);
});

test("a port forward is read from its DNAT in PREROUTING: its matches, then every choice of accepts, host connections and hairpin", () => {
  const found = nat([
    "-A PREROUTING -d 198.18.0.10/32 -i eth0 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.0.0.2:53",
    "-A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 80 -j DNAT --to-destination 10.0.0.3:80",
    "-A POSTROUTING -s 10.0.0.0/24 -d 10.0.0.2/32 -p udp -m udp --dport 53 -m conntrack --ctstate DNAT -j MASQUERADE",
  ]);
  const specs = portForwardCandidates({ protocol: "udp", port: 5353 }, found).map((c) => c.spec);
  expect(specs).toHaveLength(2 * 2 * 2);
  expect(specs[0]).toEqual({
    protocol: "udp",
    port: 5353,
    to: "10.0.0.2:53",
    destination: "198.18.0.10",
    inInterface: "eth0",
    acceptForward: true,
    fromHost: true,
    hairpinNetwork: "10.0.0.0/24",
  });
  expect(specs.at(-1)).toEqual({
    protocol: "udp",
    port: 5353,
    to: "10.0.0.2:53",
    destination: "198.18.0.10",
    inInterface: "eth0",
    acceptForward: false,
    fromHost: false,
  });
  expect(portForwardCandidates({ protocol: "tcp", port: 5353 }, found)).toEqual([]);
  expect(portForwardCandidates({}, found).map((c) => c.spec.port)).toEqual([...Array(8).fill(5353), ...Array(8).fill(80)]);
});

// Captured from `ip -d -j link show` (iproute2 6.1): a device made in the host's namespace, and one made
// there for namespace "red", where ip names the underlay's index (2, eth0 on the host) after red's own link 2.
const vxlan = {
  onHost:
    '[{"ifindex":6,"ifname":"vx1","mtu":1450,"linkinfo":{"info_kind":"vxlan","info_data":{"id":43,"local":"198.18.196.10","link":"eth0","port":4789}}}]',
  inRed:
    '[{"ifindex":3,"link_index":3,"ifname":"vx0","mtu":1450,"link_netnsid":0,"linkinfo":{"info_kind":"vxlan","info_data":{"id":42,"remote":"198.18.255.254","local":"198.18.225.10","link":"br-in","port":4789}}}]',
  noDev:
    '[{"ifindex":7,"ifname":"vx2","mtu":1450,"linkinfo":{"info_kind":"vxlan","info_data":{"id":44,"local":"198.18.196.10","port":4789}}}]',
};

test("a vxlan device's underlay: named where it was made; one made elsewhere is known by its index there", () => {
  expect(parseUnderlay(vxlan.onHost)).toEqual({ name: "eth0", madeElsewhere: false });
  expect(parseUnderlay(vxlan.inRed)).toEqual({ name: "br-in", madeElsewhere: true });
  expect(parseUnderlay(vxlan.noDev)).toBeUndefined();
});

const link = (ifname: string, extra: Partial<IpLinkJson> = {}): IpLinkJson => ({
  ifindex: 0,
  ifname,
  mtu: 1500,
  linkinfo: { info_kind: "veth" },
  ...extra,
});

function node(links: IpLinkJson[], hostLinks: IpLinkJson[], others: Record<string, IpLinkJson[]> = {}, routes: NodeState["routes"] = []) {
  const state: NodeState = { links, linkIn: () => undefined, routes, forwarding: { ipv4: false, ipv6: false } };
  return importedNodeSpec("n1", state, new Map([["", hostLinks], ["n1", links], ...Object.entries(others)]));
}

test("a node's interfaces are its veths cabled to a bridge on the host; its routes those with a gateway, the metric when not the kernel's", () => {
  const eth0 = link("eth0", { ifindex: 2, link_index: 9, link_netnsid: 0 });
  const hostEnd = link("n1-br", { ifindex: 9, link_index: 2, link_netnsid: 1, master: "lan" });
  const routes = [
    { destination: "default", via: "10.0.0.1", device: "eth0", metric: 0, family: 4 as const },
    { destination: "10.9.0.0/16", via: "10.0.0.2", device: "eth0", metric: 100, family: 4 as const },
    { destination: "10.0.0.0/24", device: "eth0", source: "10.0.0.5", metric: 0, family: 4 as const },
    { destination: "default", via: "2001:db8::1", device: "eth0", metric: 1024, family: 6 as const },
  ];
  expect(node([link("lo", { linkinfo: undefined }), eth0], [hostEnd], {}, routes)).toEqual({
    name: "n1",
    interfaces: { eth0: { bridge: { name: "lan", hostEnd: "n1-br" }, addresses: [] } },
    routes: [
      { destination: "default", via: "10.0.0.1", device: "eth0" },
      { destination: "10.9.0.0/16", via: "10.0.0.2", device: "eth0", metric: 100 },
      { destination: "default", via: "2001:db8::1", device: "eth0" },
    ],
  });
});

test("what a node cannot declare is refused: another link kind, a cable to another node, a host end on no bridge", () => {
  expect(() => node([link("br0", { linkinfo: { info_kind: "bridge" } })], [])).toThrow(
    'interface "br0" of namespace "n1" is a bridge link: a LabNode\'s interfaces are veth cables',
  );
  const paired = link("eth1", { ifindex: 3, link_index: 4, link_netnsid: 2 });
  expect(() => node([paired], [], { n2: [link("eth1", { ifindex: 4, link_index: 3, link_netnsid: 1 })] })).toThrow(
    /interface "eth1" of namespace "n1" is cabled to namespace "n2": which node makes such a cable and where it parks it only a Lab knows/,
  );
  expect(() => node([paired], [link("loose", { ifindex: 4, link_index: 3 })])).toThrow(
    'interface "eth1" of namespace "n1" has its host end "loose" on no bridge',
  );
  expect(() => node([paired], [])).toThrow('interface "eth1" of namespace "n1" has its other end in no namespace with a name');
});
