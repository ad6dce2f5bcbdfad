// A Lab over two hosts with one of each thing the command line shows: a LAN within a host, a link across
// the hosts (VXLAN; impaired when the config says so), a link within a host whose cable is pulled, a
// router and a service. Beside it, plain resources: a namespace with a veth cable and an address.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const sshKey = cfg.requireSecret("sshKey");
const east = { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey };
const west = { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey };

const lab = new netns.Lab("lab", {
  hosts: { east, west },
  nodes: {
    gw: { host: "east", router: true },
    pc1: { host: "east", routes: [{ destination: "default", via: "gw" }] },
    web: {
      host: "west",
      routes: [{ destination: "default", via: "gw" }],
      services: { http: { command: ["python3", "-m", "http.server", "8080", "--directory", "/"], readiness: { tcpPort: 8080 } } },
    },
    db: { host: "west" },
  },
  lans: { office: { members: ["gw:lan0", "pc1:eth0"] } },
  links: [
    { endpoints: ["gw:wan0", "web:eth0"], ...(cfg.requireBoolean("impair") ? { impairment: { delayMs: 20, jitterMs: 2 } } : {}) },
    { endpoints: ["web:eth1", "db:eth0"], down: true },
  ],
});

const tools = new netns.Namespace("tools", { connection: east, name: "tools" });
const cable = new netns.Veth("tools", { connection: east, name: "tools0", namespace: tools.name, peer: { name: "tools0-h" } });
new netns.Address("tools", { connection: east, namespace: tools.name, device: cable.name, address: "10.99.0.1/24" });

export const addresses = lab.addresses;
export const vnis = lab.vnis;
// The Lab's own pictures, which pulumi-netns graph must draw again from the stack's resources.
export const topologyDot = lab.topologyDot;
export const topologyMermaid = lab.topologyMermaid;
