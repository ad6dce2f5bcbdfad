// Two paths from a client to a web server. The client has a cable to each of two routers, r1 (preferred:
// its default route has the lower metric) and r2; both routers and the server share the LAN "servers",
// which spans the two hosts. The server runs a web server as a supervised Service; the Lab declares what
// must be reachable and checks it after every `up` (and every `refresh`).
//
// `pulumi config set down r1` pulls the client's cable to r1: both ends go down, the kernel drops the
// routes through it, and traffic takes r2; the checks still pass. `down both` cuts the client off, and
// `up` fails, naming what the client could not reach.
import * as pulumi from "@pulumi/pulumi";
import * as netns from "pulumi-netns";

const cfg = new pulumi.Config();
const sshKey = cfg.requireSecret("sshKey");
const down = cfg.get("down") ?? "";
const underlayDevice = cfg.require("underlayDevice");

const lab = new netns.Lab("lab", {
  hosts: {
    a: { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey },
    b: { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey },
  },
  nodes: {
    client: {
      host: "a",
      routes: [
        { destination: "default", via: "r1", metric: 100 },
        { destination: "default", via: "r2", metric: 200 },
      ],
    },
    // Each router reaches the client's cable to the other router through it.
    r1: { host: "a", router: true, routes: [{ destination: "10.0.2.0/30", via: "r2" }] },
    r2: { host: "a", router: true, routes: [{ destination: "10.0.1.0/30", via: "r1" }] },
    server: {
      host: "b",
      routes: [
        { destination: "default", via: "r1", metric: 100 },
        { destination: "default", via: "r2", metric: 200 },
      ],
      services: {
        web: {
          command: ["python3", "-m", "http.server", "8080", "--directory", "/srv"],
          readiness: { tcpPort: 8080 },
          workingDirectory: "/",
        },
      },
    },
  },
  links: [
    { endpoints: ["client:eth0", "r1:eth0"], addresses: { "client:eth0": ["10.0.1.1/30"], "r1:eth0": ["10.0.1.2/30"] }, down: down !== "" },
    {
      endpoints: ["client:eth1", "r2:eth0"],
      addresses: { "client:eth1": ["10.0.2.1/30"], "r2:eth0": ["10.0.2.2/30"] },
      down: down === "both",
    },
  ],
  lans: { servers: { members: ["r1:eth1", "r2:eth1", "server:eth0"] } },
  underlayDevice: { a: underlayDevice, b: underlayDevice },
  // Every node reaches every other (like Mininet's pingall), and the client gets a web page.
  expect: ["all-pairs", { from: "client", to: "server:8080" }],
});

export const addresses = lab.addresses;
export const topologyMermaid = lab.topologyMermaid;
