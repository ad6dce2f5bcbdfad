/**
 * `Lab`: a topology over one or more hosts as one component. planLab (planner.ts) validates it and
 * allocates subnets, addresses, VNIs and device names; this file turns the plan into resources, and the
 * renderer (graph.ts) into the topology's pictures.
 *
 * Every child is named after its identity in the plan, never its position, so adding or removing one
 * node or link adds or removes only its own children:
 *   NAME/allocations                   LabAllocation: subnets, addresses, VNIs, kept from run to run
 *   NAME/NODE                          LabNode: the namespace, its cables' interfaces, addresses, routes, forwarding
 *   NAME/SEGMENT/HOST                  LabSegment: the bridge (and VXLAN port) of a LAN or a cross-host link on that host
 *   NAME/NODE:IFNAME                   Netem of an impaired link's end
 *   NAME/NODE/service/SERVICE          Service
 *   NAME/NODE/expect                   Check of what NODE should reach (after everything else)
 * A node is one resource (a Lab of 1,000 nodes is about 1,000 resources, and the engine's cost grows with
 * their number); an edit of a node updates it in place. A node whose cable ends on a bridge comes after
 * the bridge; of the two nodes of a link within a host, the second (by name) comes after the first, which
 * makes their veth pair.
 *
 * Which children exist comes from the plan made here; the values that allocation decides (addresses,
 * gateways, VNIs) come from the plan remade with the LabAllocation's result, which keeps every seat the
 * last run had. Only a collision of hashes can tell the two apart, and then the kept seat is the one made.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import type { z } from "zod";
import type { connection } from "../../provider/connection";
import { typeToken } from "../../provider/kind";
import type { Inputs } from "../resource";
import type { LabAllocations, LabDemand } from "../../provider/lab/allocation";
import { topologyDot, topologyMermaid } from "./graph";
import { endImpairment } from "./impairment";
import { labNodeSpec, pairMaker, segmentMtu } from "./nodeSpec";
import type { LabPlan } from "./plan";
import { NEIGHBOUR_TABLE_DEFAULT, neighbourEntries, planLab } from "./planner";
import type { LabSpec } from "./spec";

type ConnectionFields = { [K in keyof z.input<typeof connection>]: Inputs<z.input<typeof connection>[K]> };

/** How to reach a host. `host` must be plain text: the plan is made when the program runs. */
export type LabHost = ConnectionFields & { host: string };

export interface LabArgs extends Omit<LabSpec, "hosts"> {
  /** Host name (as nodes refer to it) → its SSH connection. */
  hosts: Record<string, LabHost>;
}

/** From this many nodes, a Lab on the dynamic provider says that the native one suits it better. */
export const BIG_LAB_NODES = 300;

/** Changes with anything the Lab makes, so that every Check runs again after an edit. */
const planHash = (plan: LabPlan) =>
  createHash("sha256")
    .update(JSON.stringify([plan.nodes, plan.links, plan.lans]))
    .digest("hex")
    .slice(0, 16);

/** A child the Lab makes; the ones it refers to again have a `name` output. */
type Child = pulumi.CustomResource & { name: pulumi.Output<string> };

/** The kinds a Lab makes on its hosts, each door's classes of them. */
type ChildKind = "LabSegment" | "LabNode" | "Netem" | "Service" | "Check";
export type ChildClasses = Record<
  ChildKind,
  new (name: string, args: Record<string, unknown>, opts: pulumi.CustomResourceOptions) => Child
>;

/** What a Lab's LabAllocation child is given (provider/lab/allocation.ts). */
export interface LabAllocationArgs {
  demand: LabDemand;
  /** Seats to keep when the resource is new (a lab moved to a new stack); its own last result wins after that. */
  previous?: LabAllocations;
}

/**
 * How a Lab's children reach their hosts, so that one Lab serves both doors: the dynamic classes take a
 * connection in every resource, the native ones a provider per host. `make` registers a child of a kind on
 * a host; the allocation touches no host.
 */
export interface LabDoor {
  name: "dynamic" | "native";
  make(kind: ChildKind, name: string, host: string, args: Record<string, unknown>, opts: pulumi.CustomResourceOptions): Child;
  allocation(
    name: string,
    args: LabAllocationArgs,
    opts: pulumi.CustomResourceOptions,
  ): pulumi.CustomResource & { allocations: pulumi.Output<LabAllocations> };
  /** What a node's LabNode was in stacks made before LabNode existed, where this door had such stacks. */
  nodeAliases: pulumi.Alias[];
  /** What a segment's LabSegment on a host was in stacks made before LabSegment existed: its Bridge. */
  segmentAliases: pulumi.Alias[];
}

export class LabComponent extends pulumi.ComponentResource {
  /** The plan: every namespace, cable, address and VNI, as plain data, with the addresses that are made. */
  readonly plan: pulumi.Output<LabPlan>;
  /** Node → interface → addresses with prefix length. */
  readonly addresses: pulumi.Output<Record<string, Record<string, string[]>>>;
  /** Segment (link "A:IF--B:IF" or LAN name) → VNI, for segments across hosts. */
  readonly vnis: pulumi.Output<Record<string, number>>;
  /** Every subnet, address and VNI; pass it as `previous` to a new stack of the same lab to keep them. */
  readonly allocations: pulumi.Output<LabAllocations>;
  /** The topology as Graphviz DOT (`pulumi-netns graph` draws the same picture from the stack). */
  readonly topologyDot: pulumi.Output<string>;
  /** The topology as a Mermaid flowchart (renders in GitHub Markdown). */
  readonly topologyMermaid: pulumi.Output<string>;

  constructor(name: string, args: LabArgs, opts: pulumi.ComponentResourceOptions | undefined, doorFor: (lab: pulumi.Resource) => LabDoor) {
    super(typeToken("Lab"), name, {}, opts);
    const { hosts, ...topology } = args;
    const door = doorFor(this);
    const spec = { ...topology, hosts: Object.fromEntries(Object.entries(hosts).map(([h, c]) => [h, { host: c.host }])) };
    // A topology that cannot work throws here, before any resource is registered.
    const plan = planLab(spec);
    if (spec.expect === "all-pairs" || (Array.isArray(spec.expect) && spec.expect.includes("all-pairs"))) {
      for (const [host, entries] of Object.entries(neighbourEntries(plan))) {
        if (entries <= NEIGHBOUR_TABLE_DEFAULT) continue;
        pulumi.log.warn(
          `host ${host}: checking all of this lab's neighbours makes up to ${entries} neighbour (ARP) entries, and the kernel holds ` +
            `${NEIGHBOUR_TABLE_DEFAULT} by default for all namespaces together: past that, pings are lost. Raise ` +
            `net.ipv4.neigh.default.gc_thresh3 (and gc_thresh2) on that host, for example with a Sysctl resource.`,
          this,
        );
      }
    }
    if (door.name === "dynamic" && plan.nodes.length >= BIG_LAB_NODES) {
      pulumi.log.warn(
        `a Lab of ${plan.nodes.length} nodes on the dynamic provider: each of its resources keeps the serialized provider and ` +
          "its encrypted connection in state, so that state and the Pulumi CLI's memory grow fast (measured: 1.9 MB and 728 MB " +
          "at 300 nodes, 6.3 MB and 3.3 GB at 1,000). The native provider (`pulumi-netns/native`) keeps neither: " +
          "2.9 MB and 251 MB at 1,000 nodes (docs/design.md, Scale).",
        this,
      );
    }
    const child = { parent: this };
    const allocation = door.allocation(
      `${name}/allocations`,
      { demand: plan.demand, ...(spec.previous ? { previous: spec.previous } : {}) },
      child,
    );
    this.plan = allocation.allocations.apply((kept) => planLab({ ...spec, previous: kept }));
    const made = <T>(pick: (made: LabPlan) => T) => this.plan.apply(pick);
    /**
     * Bridges, tunnel ends and netem: what a check's packets may cross besides nodes. A check depends on
     * these, the routers and the nodes at its ends, not on every resource: each dependency is a URN in its
     * state, and all-pairs over 1,000 nodes would store a million.
     */
    const fabric: pulumi.Resource[] = [];
    const add = <R extends pulumi.Resource>(resource: R) => (fabric.push(resource), resource);

    const segments = [...plan.links, ...plan.lans];
    const bridges = new Map<string, Child>();
    for (const segment of segments) {
      for (const b of segment.bridges) {
        const end = segment.vxlan?.ends.find((e) => e.host === b.host);
        const vxlan = end && {
          name: end.name,
          vni: made((p) => p.vnis[segment.id]),
          local: end.local,
          // Flood entries on any number of hosts: a segment grows and shrinks in place.
          remotes: end.remotes,
          dstport: segment.vxlan!.port,
          device: end.device,
        };
        const args = { name: b.name, mtu: segmentMtu(segment), ...(vxlan ? { vxlan } : {}) };
        const opts = { ...child, aliases: door.segmentAliases };
        bridges.set(`${segment.id}/${b.host}`, add(door.make("LabSegment", `${name}/${segment.id}/${b.host}`, b.host, args, opts)));
      }
    }

    // In name order, so that the first node of a link within a host (which makes the pair) exists first.
    const nodes = new Map<string, Child>();
    for (const n of plan.nodes) {
      const inputs = made((p) =>
        labNodeSpec(
          p,
          p.nodes.find((m) => m.name === n.name)!,
        ),
      );
      const after = n.interfaces.flatMap((i): pulumi.Resource[] => {
        const segment = segments.find((s) => s.id === i.segment)!;
        const bridge = bridges.get(`${segment.id}/${n.host}`);
        if (bridge) return [bridge];
        const maker = pairMaker(segment);
        return maker === n.name ? [] : [nodes.get(maker)!];
      });
      nodes.set(
        n.name,
        door.make(
          "LabNode",
          `${name}/${n.name}`,
          n.host,
          {
            name: n.namespace,
            interfaces: inputs.apply((i) => i.interfaces),
            routes: inputs.apply((i) => i.routes),
            forwarding: inputs.apply((i) => i.forwarding),
          },
          { parent: this, dependsOn: after, aliases: door.nodeAliases },
        ),
      );
    }

    for (const segment of segments.filter((s) => s.impairment)) {
      for (const m of segment.members) {
        const args = { namespace: nodes.get(m.node)!.name, device: m.ifname, ...endImpairment(segment.impairment!) };
        add(door.make("Netem", `${name}/${m.endpoint}`, m.host, args, child));
      }
    }

    // Services start once their node is there with its addresses (a server may bind one of them).
    const services = new Map(
      plan.nodes.map((n) => [
        n.name,
        Object.entries(n.services).map(([service, settings]) =>
          door.make(
            "Service",
            `${name}/${n.name}/service/${service}`,
            n.host,
            { namespace: nodes.get(n.name)!.name, name: service, ...settings },
            { parent: this, dependsOn: [nodes.get(n.name)!] },
          ),
        ),
      ]),
    );

    // One Check per node that expects something, run again whenever anything in the Lab changes, once
    // what its packets may cross is there: the fabric, the routers, the nodes at both ends and their
    // services (every node, for a target given as an address).
    const revision = made(planHash);
    const routers = plan.nodes.filter((n) => n.router).map((n) => n.name);
    for (const n of plan.nodes.filter((node) => node.checks.length > 0)) {
      const targets = made((p) => p.nodes.find((m) => m.name === n.name)!.checks);
      const ends = n.checks.map((t) => (t.label ?? "").split(":")[0]);
      const reached = ends.every((end) => nodes.has(end)) ? [...new Set([n.name, ...ends, ...routers])] : [...nodes.keys()];
      door.make(
        "Check",
        `${name}/${n.name}/expect`,
        n.host,
        { namespace: nodes.get(n.name)!.name, from: `node ${n.name}`, targets, triggers: [revision] },
        { parent: this, dependsOn: [...fabric, ...reached.flatMap((node) => [nodes.get(node)!, ...services.get(node)!])] },
      );
    }

    this.addresses = made((p) =>
      Object.fromEntries(p.nodes.map((n) => [n.name, Object.fromEntries(n.interfaces.map((i) => [i.ifname, i.addresses]))])),
    );
    this.vnis = made((p) => p.vnis);
    this.allocations = allocation.allocations;
    this.topologyDot = made(topologyDot);
    this.topologyMermaid = made(topologyMermaid);
    // State keeps only what is small: the rest grows with the lab (241 KB at 1,000 nodes) and the engine
    // rewrites state after every step. The program reads every output above, and may export it.
    this.registerOutputs({ vnis: this.vnis });
  }
}
