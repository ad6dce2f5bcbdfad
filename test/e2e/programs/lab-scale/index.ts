// A Lab of 2 × PER_HOST nodes over two hosts: on each, a router and PER_HOST - 1 nodes on LANs of at
// most LAN_SIZE nodes (one LAN unless `lanSize` says), the router on each, every node's default route
// via its router; the routers are joined by a link across the hosts and each routes by default via the
// other. With `allPairs`, every node checks that it reaches every other.
import * as pulumi from "@pulumi/pulumi";
import * as dynamic from "pulumi-netns";
import * as native from "pulumi-netns/native";

const cfg = new pulumi.Config();
// The native provider (one Provider per host, made by the Lab) or the dynamic one (a connection in every resource).
const netns = cfg.get("door") === "native" ? native : dynamic;
const perHost = cfg.requireNumber("perHost");
const lanSize = cfg.getNumber("lanSize") ?? perHost;
const sshKey = cfg.requireSecret("sshKey");
const sites = ["east", "west"] as const;
const other = { east: "west", west: "east" } as const;

const nodes: dynamic.LabArgs["nodes"] = {};
const lans: NonNullable<dynamic.LabArgs["lans"]> = {};
for (const site of sites) {
  nodes[`r-${site}`] = { host: site, router: true, routes: [{ destination: "default", via: `r-${other[site]}` }] };
  for (let i = 1; i < perHost; i++) {
    const group = Math.floor((i - 1) / lanSize);
    const lan = group === 0 ? site : `${site}-${group}`;
    lans[lan] ??= { members: [`r-${site}:lan${group}`] };
    nodes[`${site}${i}`] = { host: site, routes: [{ destination: "default", via: `r-${site}` }] };
    lans[lan].members.push(`${site}${i}:eth0`);
  }
}

const lab = new netns.Lab("scale", {
  hosts: {
    east: { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey },
    west: { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey },
  },
  nodes,
  lans,
  links: [{ endpoints: ["r-east:wan0", "r-west:wan0"] }],
  // Every node pings every other: one Check per node.
  ...(cfg.getBoolean("allPairs") ? { expect: "all-pairs" as const } : {}),
});

export const addresses = lab.addresses;
