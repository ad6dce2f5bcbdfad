// One lab over two hosts. East: the router gw and two PCs on the LAN "office" (a bridge). West: the
// web server and the database behind it. gw and web are joined by a link across the hosts (a VXLAN
// tunnel) with 20 ms of delay; web routes for db. Subnets and addresses come from the Lab's pools,
// except the web–db link's, which the route on gw names.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const sshKey = cfg.requireSecret("sshKey");
const underlayDevice = cfg.require("underlayDevice");
const underlayMtu = cfg.requireNumber("underlayMtu");

const lab = new netns.Lab("lab", {
  hosts: {
    east: { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey },
    west: { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey },
  },
  nodes: {
    gw: { host: "east", router: true, routes: [{ destination: "10.2.0.0/30", via: "web" }] },
    pc1: { host: "east", routes: [{ destination: "default", via: "gw" }] },
    pc2: { host: "east", routes: [{ destination: "default", via: "gw" }] },
    web: { host: "west", router: true, routes: [{ destination: "default", via: "gw" }] },
    db: { host: "west", routes: [{ destination: "default", via: "web" }] },
  },
  lans: { office: { members: ["gw:lan0", "pc1:eth0", "pc2:eth0"] } },
  links: [
    // Half the delay on each end: 20 ms on the round trip. Kernels without netem: `pulumi config set impair false`.
    { endpoints: ["gw:wan0", "web:eth0"], ...(cfg.requireBoolean("impair") ? { impairment: { delayMs: 20 } } : {}) },
    { endpoints: ["web:eth1", "db:eth0"], addresses: { "web:eth1": ["10.2.0.1/30"], "db:eth0": ["10.2.0.2/30"] } },
  ],
  underlayDevice: { east: underlayDevice, west: underlayDevice },
  // 9000 on a jumbo-frame network gives the link across the hosts 8950; per host, the smaller end wins.
  underlayMtu: { east: underlayMtu, west: underlayMtu },
});

export const addresses = lab.addresses;
export const vnis = lab.vnis;
export const topologyDot = lab.topologyDot;
export const topologyMermaid = lab.topologyMermaid;
// Kept from run to run by the Lab itself; give it as `previous` to a new stack of this lab to keep every address.
export const allocations = lab.allocations;
