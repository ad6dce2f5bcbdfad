// The full recipe: red and blue namespaces on the bridge v-net-0, which is their gateway;
// forwarding on, masquerade for the lab network, and the host's port 80 forwarded to blue:80.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection: netns.ConnectionArgs = {
  host: cfg.require("host"),
  privateKey: cfg.requireSecret("sshKey"),
  hostKey: cfg.require("hostKey"),
};
// Optional: `pulumi config set mtu 1400` manages the MTU of the bridge and the cables.
const mtu = cfg.getNumber("mtu");
const network = "192.168.15.0/24";
const gateway = "192.168.15.5";
const members = {
  red: cfg.require("redAddress"),
  blue: cfg.require("blueAddress"),
};

const bridge = new netns.Bridge("v-net-0", { connection, name: "v-net-0", mtu });
const gatewayAddress = new netns.Address("gateway", { connection, device: bridge.name, address: `${gateway}/24` });

for (const [color, address] of Object.entries(members)) {
  const ns = new netns.Namespace(color, { connection, name: color });
  const cable = new netns.Veth(color, {
    connection,
    name: `veth-${color}`,
    namespace: ns.name,
    mtu,
    peer: { name: `veth-${color}-br`, master: bridge.name },
  });
  const ip = new netns.Address(color, { connection, namespace: ns.name, device: cable.name, address });
  // The route names its source address, so a new address replaces the route too (the kernel drops
  // routes whose gateway loses its connected network); dependsOn orders the first creation.
  new netns.Route(
    `${color}-default`,
    { connection, namespace: ns.name, destination: "default", via: gateway, source: address.split("/")[0] },
    { dependsOn: [ip, gatewayAddress] },
  );
}

new netns.Sysctl("forwarding", { connection, key: "net.ipv4.ip_forward", value: "1" });
new netns.Masquerade("lab", { connection, source: network });
const web = new netns.PortForward("web", {
  connection,
  protocol: "tcp",
  port: 80,
  to: `${members.blue.split("/")[0]}:80`,
  // red reaching the host's port 80 gets to blue too, its answer coming back through the host.
  hairpinNetwork: network,
});

export const bridgeName = bridge.name;
export const webForward = pulumi.interpolate`${web.protocol} ${web.port} -> ${web.to}`;
