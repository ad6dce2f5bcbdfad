// The Lab as other languages get it: a remote component, `netns:index:Lab`, which the native provider
// builds (construct). No pulumi-netns import: this is what a generated SDK's Lab class does.
import * as pulumi from "@pulumi/pulumi";

class Lab extends pulumi.ComponentResource {
  declare readonly addresses: pulumi.Output<Record<string, Record<string, string[]>>>;
  declare readonly vnis: pulumi.Output<Record<string, number>>;
  constructor(name: string, args: Record<string, unknown>, opts?: pulumi.ComponentResourceOptions) {
    const outputs = { addresses: undefined, vnis: undefined, allocations: undefined, topologyDot: undefined, topologyMermaid: undefined };
    super("netns:index:Lab", name, { ...args, ...outputs }, opts, true);
  }
}

const cfg = new pulumi.Config();
const sshKey = cfg.requireSecret("sshKey");
const lab = new Lab("lab", {
  hosts: {
    east: { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey },
    west: { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey },
  },
  nodes: {
    gw: { host: "east", router: true },
    pc: { host: "east", routes: [{ destination: "default", via: "gw" }] },
    web: {
      host: "west",
      routes: [{ destination: "default", via: "gw" }],
      services: { http: { command: ["python3", "-m", "http.server", "8080"], readiness: { tcpPort: 8080 }, workingDirectory: "/" } },
    },
  },
  lans: { office: { members: ["gw:lan0", { endpoint: "pc:eth0" }] } },
  links: [{ endpoints: ["gw:wan0", "web:eth0"] }],
  expect: ["all-pairs", { from: "pc", to: "web:8080" }],
});

export const addresses = lab.addresses;
export const vnis = lab.vnis;
