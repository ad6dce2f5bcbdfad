// The same lab on two hosts: a namespace "app" behind the bridge br-lab, with a default route,
// forwarding and masquerade, so "app" reaches whatever its host reaches. Each host gets its own subnet.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const sshKey = cfg.requireSecret("sshKey");

function lab(site: string, connection: netns.ConnectionArgs, subnet: string) {
  const bridge = new netns.Bridge(`${site}-br`, { connection, name: "br-lab" });
  const gateway = new netns.Address(`${site}-gw`, { connection, device: bridge.name, address: `${subnet}.1/24` });
  const app = new netns.Namespace(`${site}-app`, { connection, name: "app" });
  const cable = new netns.Veth(`${site}-app`, {
    connection,
    name: "veth-app",
    namespace: app.name,
    peer: { name: "veth-app-br", master: bridge.name },
  });
  const ip = new netns.Address(`${site}-app`, { connection, namespace: app.name, device: cable.name, address: `${subnet}.10/24` });
  new netns.Route(
    `${site}-default`,
    { connection, namespace: app.name, destination: "default", via: `${subnet}.1` },
    {
      dependsOn: [ip, gateway],
    },
  );
  new netns.Sysctl(`${site}-forwarding`, { connection, key: "net.ipv4.ip_forward", value: "1" });
  new netns.Masquerade(`${site}-nat`, { connection, source: `${subnet}.0/24` });
  return pulumi.interpolate`${app.name} ${subnet}.10 on ${bridge.name}`;
}

export const siteA = lab("a", { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey }, "10.50.1");
export const siteB = lab("b", { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey }, "10.50.2");
