// A Lab of `nodes` nodes over two hosts, in groups of GROUP_SIZE (the last may be smaller): each group is a
// LAN with a router among its nodes, the first half of the groups on host east, the rest on west. Every
// router is also on one core LAN across both hosts and routes to every other group's LAN via that group's
// router; every other node routes by default via its own router. With `allPairsGroup`, every node of that
// group (or of its first `allPairsSize`) checks that it reaches every other one of them.
import * as pulumi from "@pulumi/pulumi";
import * as dynamic from "pulumi-netns";
import * as native from "pulumi-netns/native";

const GROUP_SIZE = 50;

const cfg = new pulumi.Config();
// The native provider (one Provider per host, made by the Lab) or the dynamic one (a connection in every resource).
const netns = cfg.get("door") === "native" ? native : dynamic;
const count = cfg.requireNumber("nodes");
const allPairsGroup = cfg.getNumber("allPairsGroup");
// The kernel's neighbour table is one per host (1,024 entries by default): all pairs of a whole group of 50 need 2,450.
const allPairsSize = cfg.getNumber("allPairsSize") ?? GROUP_SIZE;
const sshKey = cfg.requireSecret("sshKey");
const groups = Math.ceil(count / GROUP_SIZE);
// Group LANs get 10.0.G.0/24, fixed by the router's address, so routes can name them before allocation;
// 10.1.0.0/16 (the links' pool) and 172.16.0.0/16 (the LANs' pool, where the core LAN gets its subnet) stay clear.
if (groups > 256) throw new Error(`at most ${256 * GROUP_SIZE} nodes (one 10.0.G.0/24 per group)`);
const router = (g: number) => `g${g}r`;
const groupSubnet = (g: number) => `10.0.${g}.0/24`;

const nodes: dynamic.LabArgs["nodes"] = {};
const lans: NonNullable<dynamic.LabArgs["lans"]> = { core: { members: [] } };
const members: string[][] = [];
for (let g = 0; g < groups; g++) {
  const host = g < groups / 2 ? "east" : "west";
  const others = Array.from({ length: groups }, (_, h) => h).filter((h) => h !== g);
  nodes[router(g)] = { host, router: true, routes: others.map((h) => ({ destination: groupSubnet(h), via: router(h) })) };
  lans.core.members.push(`${router(g)}:core`);
  lans[`g${g}`] = { members: [`${router(g)}:lan`], addresses: { [`${router(g)}:lan`]: [`10.0.${g}.1/24`] } };
  members.push([router(g)]);
  for (let i = 1; i < Math.min(GROUP_SIZE, count - g * GROUP_SIZE); i++) {
    nodes[`g${g}n${i}`] = { host, routes: [{ destination: "default", via: router(g) }] };
    lans[`g${g}`].members.push(`g${g}n${i}:eth0`);
    members[g].push(`g${g}n${i}`);
  }
}
if (allPairsGroup !== undefined && !members[allPairsGroup])
  throw new Error(`allPairsGroup ${allPairsGroup}: there are groups 0 to ${groups - 1}`);

const lab = new netns.Lab("bench", {
  hosts: {
    east: { host: cfg.require("hostA"), hostKey: cfg.require("hostKeyA"), privateKey: sshKey },
    west: { host: cfg.require("hostB"), hostKey: cfg.require("hostKeyB"), privateKey: sshKey },
  },
  nodes,
  lans,
  // "all-pairs" would span the whole Lab; one group's pairs are listed (one Check per node of the group).
  ...(allPairsGroup !== undefined
    ? {
        expect: members[allPairsGroup]
          .slice(0, allPairsSize)
          .flatMap((from, _i, some) => some.filter((to) => to !== from).map((to) => ({ from, to }))),
      }
    : {}),
});

export const addresses = lab.addresses;
