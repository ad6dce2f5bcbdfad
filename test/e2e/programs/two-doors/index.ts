// examples/bridge-lab through either door: `door: dynamic` (the package's main entry, a connection on
// every resource) or `door: native` (pulumi-netns/native, one Provider for the host).
import * as pulumi from "@pulumi/pulumi";
import * as dynamic from "pulumi-netns";
import * as native from "pulumi-netns/native";

const cfg = new pulumi.Config();
const connection = { host: cfg.require("host"), privateKey: cfg.requireSecret("sshKey"), hostKey: cfg.require("hostKey") };
const door = cfg.require("door");
const provider = door === "native" ? new native.Provider("host", connection) : undefined;
const sdk: Record<string, any> = door === "native" ? native : dynamic;

function make(kind: string, name: string, args: Record<string, unknown>, opts: pulumi.CustomResourceOptions = {}): any {
  return new sdk[kind](name, provider ? args : { connection, ...args }, { ...opts, provider });
}

const gateway = "192.168.15.5";
const bridge = make("Bridge", "v-net-0", { name: "v-net-0" });
const gatewayAddress = make("Address", "gateway", { device: bridge.name, address: `${gateway}/24` });
for (const [color, address] of Object.entries({ red: "192.168.15.1/24", blue: "192.168.15.2/24" })) {
  const ns = make("Namespace", color, { name: color });
  const cable = make("Veth", color, { name: `veth-${color}`, namespace: ns.name, peer: { name: `veth-${color}-br`, master: bridge.name } });
  const ip = make("Address", color, { namespace: ns.name, device: cable.name, address });
  make("Route", `${color}-default`, { namespace: ns.name, destination: "default", via: gateway }, { dependsOn: [ip, gatewayAddress] });
}
make("Sysctl", "forwarding", { key: "net.ipv4.ip_forward", value: "1" });
make("Masquerade", "lab", { source: "192.168.15.0/24" });
make("PortForward", "web", { protocol: "tcp", port: 80, to: "192.168.15.2:80", hairpinNetwork: "192.168.15.0/24" });

export const bridgeName = bridge.name;
