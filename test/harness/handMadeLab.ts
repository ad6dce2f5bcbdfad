/**
 * The bridge lab made by hand with ip, iptables and sysctl, as before pulumi-netns, for the import tests:
 * every importable kind once but Netem (this project's kernels have no netem, and UML's, which has,
 * has no iptables nat: its import is proven on its own), each with the id `pulumi import` names it by
 * and the inputs a program declaring it gives. A second namespace is cabled as a LabNode is; a bridge
 * sits inside a namespace; another bridge has a VXLAN port, as a LabSegment's. The rules have the shapes
 * Masquerade and PortForward make, without a mark.
 */
import type { TestHost } from "./throwawayHosts";

export interface HandMade {
  type: string;
  /** The resource's name in the program. */
  name: string;
  id: string;
  inputs: Record<string, unknown>;
}

/** An address in the benchmarking range no host of a lab has: the VXLAN's other end, never reached. */
const FAR_END = "198.18.255.254";

export function makeHandMadeLab(host: TestHost): HandMade[] {
  const script = [
    "ip netns add red",
    "ip -n red link set lo up",
    "ip link add v-net-0 type bridge",
    "ip link set v-net-0 up",
    "ip addr add 192.168.15.5/24 dev v-net-0",
    "ip link add veth-red type veth peer name veth-red-br",
    "ip link set veth-red netns red",
    "ip link set veth-red-br master v-net-0 up",
    "ip -n red link set veth-red up",
    "ip -n red addr add 192.168.15.1/24 dev veth-red",
    "ip -n red route add default via 192.168.15.5",
    "ip -n red link add br-in type bridge",
    `ip link add vx0 netns red type vxlan id 42 local ${host.address} remote ${FAR_END} dstport 4789 dev eth0`,
    "ip -n red link set vx0 up",
    // A node: its end made on the host and moved (the host has an eth0 of its own), on the bridge.
    "ip netns add blue",
    "ip -n blue link set lo up",
    "ip link add blue-br type veth peer name blue-eth0",
    "ip link set blue-eth0 netns blue",
    "ip -n blue link set blue-eth0 name eth0",
    "ip link set blue-br master v-net-0 up",
    "ip -n blue link set eth0 up",
    "ip -n blue addr add 192.168.15.2/24 dev eth0",
    "ip -n blue route add default via 192.168.15.5",
    // A segment's part: a bridge and its VXLAN port, with a flood entry for the other host; left down.
    "ip link add seg0 mtu 1450 type bridge",
    `ip link add segvx mtu 1450 type vxlan id 43 local ${host.address} dstport 4789 dev eth0`,
    "ip link set segvx master seg0",
    `bridge fdb append 00:00:00:00:00:00 dev segvx dst ${FAR_END}`,
    "sysctl -qw net.ipv4.ip_forward=1",
    "iptables -w -t nat -A POSTROUTING -s 192.168.15.0/24 ! -d 192.168.15.0/24 -j MASQUERADE",
    "iptables -w -t nat -A PREROUTING -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -j DNAT --to-destination 192.168.15.2:80",
    "iptables -w -t nat -A OUTPUT ! -d 127.0.0.0/8 -p tcp -m addrtype --dst-type LOCAL -m tcp --dport 8080 -j DNAT --to-destination 192.168.15.2:80",
  ];
  host.sh(["sh", "-ec", script.join("\n")]);
  return [
    { type: "Namespace", name: "red", id: "red", inputs: { name: "red" } },
    { type: "Bridge", name: "v-net-0", id: "v-net-0", inputs: { name: "v-net-0", mtu: 1500 } },
    { type: "Bridge", name: "br-in", id: "red/br-in", inputs: { name: "br-in", namespace: "red", mtu: 1500, up: false } },
    {
      type: "Veth",
      name: "red",
      id: "red/veth-red",
      inputs: { name: "veth-red", namespace: "red", peer: { name: "veth-red-br", master: "v-net-0" } },
    },
    { type: "Address", name: "gateway", id: "/v-net-0/192.168.15.5/24", inputs: { device: "v-net-0", address: "192.168.15.5/24" } },
    {
      type: "Address",
      name: "red",
      id: "red/veth-red/192.168.15.1/24",
      inputs: { namespace: "red", device: "veth-red", address: "192.168.15.1/24" },
    },
    {
      type: "Route",
      name: "red-default",
      id: "red/default/0",
      inputs: { namespace: "red", destination: "default", via: "192.168.15.5", device: "veth-red", metric: 0 },
    },
    { type: "Masquerade", name: "lab", id: "192.168.15.0/24", inputs: { source: "192.168.15.0/24", acceptForward: false } },
    {
      type: "PortForward",
      name: "web",
      id: "tcp/8080",
      inputs: { protocol: "tcp", port: 8080, to: "192.168.15.2:80", acceptForward: false },
    },
    { type: "Sysctl", name: "forwarding", id: "/net.ipv4.ip_forward", inputs: { key: "net.ipv4.ip_forward", value: "1" } },
    {
      type: "Vxlan",
      name: "vx0",
      id: "red/vx0",
      inputs: { name: "vx0", namespace: "red", vni: 42, local: host.address, remote: FAR_END, device: "eth0", mtu: 1450 },
    },
    {
      type: "LabNode",
      name: "blue",
      id: "blue",
      inputs: {
        name: "blue",
        interfaces: { eth0: { bridge: { name: "v-net-0", hostEnd: "blue-br" }, addresses: ["192.168.15.2/24"] } },
        routes: [{ destination: "default", via: "192.168.15.5", device: "eth0" }],
      },
    },
    {
      type: "LabSegment",
      name: "seg0",
      id: "seg0",
      inputs: {
        name: "seg0",
        mtu: 1450,
        up: false,
        vxlan: { name: "segvx", vni: 43, local: host.address, remotes: [FAR_END], device: "eth0" },
      },
    },
  ];
}
