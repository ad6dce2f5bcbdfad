// COUNT namespaces, each with a cable to one bridge and an address: 3 × COUNT + 1 resources.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const connection: netns.ConnectionArgs = {
  host: cfg.require("host"),
  privateKey: cfg.requireSecret("sshKey"),
  hostKey: cfg.require("hostKey"),
};
const count = cfg.requireNumber("count");

const bridge = new netns.Bridge("br", { connection, name: "br-scale" });
for (let i = 0; i < count; i++) {
  const ns = new netns.Namespace(`ns${i}`, { connection, name: `ns${i}` });
  const cable = new netns.Veth(`veth${i}`, {
    connection,
    name: "eth0",
    namespace: ns.name,
    peer: { name: `vs${i}`, master: bridge.name },
  });
  new netns.Address(`addr${i}`, { connection, namespace: ns.name, device: cable.name, address: `10.60.${i >> 8}.${(i & 255) + 1}/16` });
}
