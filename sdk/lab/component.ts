/**
 * `Lab`: a topology over one or more hosts as one component. planLab (model.ts) validates it and
 * allocates subnets, addresses, VNIs and device names; this file only turns the plan into resources.
 *
 * Every child is named after its identity in the plan, never its position, so adding or removing one
 * node or link adds or removes only its own children:
 *   NAME/allocations                   LabAllocation: subnets, addresses, VNIs, kept from run to run
 *   NAME/NODE                          Namespace
 *   NAME/NODE/KEY                      Sysctl (forwarding on routers)
 *   NAME/NODE/route/DEST/ipvF          Route
 *   NAME/SEGMENT/HOST                  Bridge and Vxlan of a LAN or a cross-host link on that host
 *   NAME/NODE:IFNAME                   Veth of a LAN member or cross-host link end; Netem of a link end
 *   NAME/NODE:IFNAME/ipvF              Address
 *   NAME/A:IF--B:IF                    Veth of a link within one host
 *   NAME/NODE/service/SERVICE          Service
 *   NAME/NODE/expect                   Check of what NODE should reach (after everything else)
 * Outputs flow from parent objects into children (namespace name into the veth, bridge name into the
 * veth's peer, device into the address), so the engine creates and destroys them in order.
 *
 * Which children exist comes from the plan made here; the values that allocation decides (addresses,
 * gateways, VNIs) come from the plan remade with the LabAllocation's result, which keeps every seat the
 * last run had. Only a collision of hashes can tell the two apart, and then the kept seat is the one made.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import type { z } from "zod";
import type { connection } from "../../provider/connection";
import { Address, Bridge, Check, Namespace, Netem, Route, Service, Sysctl, Veth, Vxlan } from "../index";
import type { Inputs } from "../resource";
import type { Succession } from "../../provider/lab/allocation";
import { LabAllocation } from "./allocation";
import { LabAllocations, LinkImpairment, LabPlan, LabSpec, MemberPlan, NEIGHBOUR_TABLE_DEFAULT, neighbourEntries, planLab, RoutePlan, SegmentPlan } from "./model";

type ConnectionFields = { [K in keyof z.input<typeof connection>]: Inputs<z.input<typeof connection>[K]> };

/** How to reach a host. `host` must be plain text: the plan is made when the program runs. */
export type LabHost = ConnectionFields & { host: string };

export interface LabArgs extends Omit<LabSpec, "hosts"> {
  /** Host name (as nodes refer to it) → its SSH connection. */
  hosts: Record<string, LabHost>;
}

/**
 * netem delays packets as they leave an interface, so each direction of a link passes the netem of
 * one end: each end gets half the delay and half the jitter, so that the round trip sees the link's
 * whole delay. Loss, corruption, duplication, reordering, rate and limit apply per direction as given.
 */
export function endImpairment(link: LinkImpairment): LinkImpairment {
  return { ...link, delayMs: link.delayMs / 2, jitterMs: link.jitterMs / 2 };
}

const familyOf = (address: string) => (address.includes(":") ? 6 : 4);

/**
 * A cable that is down is administratively down at both ends, and the kernel then drops the routes
 * through them and their IPv6 addresses (IPv4 addresses stay): while it is down, those are `suspended`
 * (in state, not on the host), and they are put back, in place, when it comes up.
 */
const suspendedWhile = (down: boolean | undefined) => (down ? { suspended: true } : {});

/** Changes with anything the Lab makes, so that every Check runs again after an edit. */
const planHash = (plan: LabPlan) =>
  createHash("sha256").update(JSON.stringify([plan.nodes, plan.links, plan.lans])).digest("hex").slice(0, 16);

export class Lab extends pulumi.ComponentResource {
  /** The plan: every namespace, cable, address and VNI, as plain data, with the addresses that are made. */
  readonly plan: pulumi.Output<LabPlan>;
  /** Node → interface → addresses with prefix length. */
  readonly addresses: pulumi.Output<Record<string, Record<string, string[]>>>;
  /** Segment (link "A:IF--B:IF" or LAN name) → VNI, for segments across hosts. */
  readonly vnis: pulumi.Output<Record<string, number>>;
  /** Every subnet, address and VNI; pass it as `previous` to a new stack of the same lab to keep them. */
  readonly allocations: pulumi.Output<LabAllocations>;
  /** The topology as Graphviz DOT (`npm run graph` renders a stack's `topologyDot` output). */
  readonly topologyDot: pulumi.Output<string>;
  /** The topology as a Mermaid flowchart (renders in GitHub Markdown). */
  readonly topologyMermaid: pulumi.Output<string>;

  constructor(name: string, args: LabArgs, opts?: pulumi.ComponentResourceOptions) {
    super("netns:index:Lab", name, {}, opts);
    const { hosts, ...topology } = args;
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
    const child = { parent: this };
    const allocation = new LabAllocation(`${name}/allocations`, { demand: plan.demand, ...(spec.previous ? { previous: spec.previous } : {}) }, child);
    this.plan = allocation.allocations.apply((kept) => planLab({ ...spec, previous: kept }));
    const made = <T>(pick: (made: LabPlan) => T) => this.plan.apply(pick);
    const segmentMade = (id: string) => made((p) => [...p.links, ...p.lans].find((s) => s.id === id)!);
    const connection = (host: string) => hosts[host];
    /** Everything made on the hosts: the checks run once all of it is there. */
    const onHosts: pulumi.Resource[] = [];
    const add = <R extends pulumi.Resource>(resource: R) => (onHosts.push(resource), resource);

    const namespaces = new Map(
      plan.nodes.map((n) => [n.name, add(new Namespace(`${name}/${n.name}`, { connection: connection(n.host), name: n.namespace }, child))]),
    );
    const namespaceOf = (node: string) => namespaces.get(node)!.name;
    for (const n of plan.nodes) {
      for (const s of n.sysctls) {
        add(new Sysctl(`${name}/${n.name}/${s.key}`, { connection: connection(n.host), namespace: namespaceOf(n.name), key: s.key, value: s.value }, child));
      }
    }

    /** Endpoint → the Address resources on it, for routes that need the connected network first. */
    const addressesOn = new Map<string, Address[]>();
    for (const segment of [...plan.links, ...plan.lans]) {
      const madeSegment = segmentMade(segment.id);
      // A stack from before successions has none in its state until its allocation next changes.
      const succession = allocation.successions.apply((all) => (all ?? {})[segment.id]);
      for (const { endpoint, node, host, addresses, device, down } of this.cable(name, segment, hosts, namespaceOf, madeSegment, succession, add)) {
        addressesOn.set(
          endpoint,
          addresses.map((planned) => {
            const family = familyOf(planned);
            const address = madeSegment.apply((s) => s.members.find((m) => m.endpoint === endpoint)!.addresses.find((a) => familyOf(a) === family)!);
            const args = { connection: connection(host), namespace: namespaceOf(node), device, address, ...suspendedWhile(down && family === 6) };
            return add(new Address(`${name}/${endpoint}/ipv${family}`, args, child));
          }),
        );
        if (segment.impairment) {
          add(new Netem(`${name}/${endpoint}`, { connection: connection(host), namespace: namespaceOf(node), device, ...endImpairment(segment.impairment) }, child));
        }
      }
    }

    for (const n of plan.nodes) {
      const down = new Set(n.interfaces.filter((i) => i.down).map((i) => i.ifname));
      for (const r of n.routes) {
        const family = familyOf(r.via);
        const same = (m: RoutePlan) => m.destination === r.destination && familyOf(m.via) === family && m.metric === r.metric;
        const via = made((p) => p.nodes.find((m) => m.name === n.name)!.routes.find(same)!.via);
        add(
          new Route(
            `${name}/${n.name}/route/${r.destination}/ipv${family}${r.metric !== undefined ? `/metric${r.metric}` : ""}`,
            {
              connection: connection(n.host),
              namespace: namespaceOf(n.name),
              destination: r.destination,
              via,
              device: r.device,
              metric: r.metric,
              ...suspendedWhile(down.has(r.device)),
            },
            // The kernel takes a gateway only once the device has an address on its network.
            { parent: this, dependsOn: addressesOn.get(`${n.name}:${r.device}`) },
          ),
        );
      }
    }

    // Services start once the cabling is there (a server may bind one of its node's addresses).
    const cabled = [...onHosts];
    for (const n of plan.nodes) {
      for (const [service, settings] of Object.entries(n.services)) {
        add(
          new Service(
            `${name}/${n.name}/service/${service}`,
            { connection: connection(n.host), namespace: namespaceOf(n.name), name: service, ...settings },
            { parent: this, dependsOn: cabled },
          ),
        );
      }
    }

    // One Check per node that expects something, run again whenever anything in the Lab changes.
    const revision = made(planHash);
    for (const n of plan.nodes.filter((node) => node.checks.length > 0)) {
      const targets = made((p) => p.nodes.find((m) => m.name === n.name)!.checks);
      new Check(
        `${name}/${n.name}/expect`,
        { connection: connection(n.host), namespace: namespaceOf(n.name), from: `node ${n.name}`, targets, triggers: [revision] },
        { parent: this, dependsOn: onHosts },
      );
    }

    this.addresses = made((p) => Object.fromEntries(p.nodes.map((n) => [n.name, Object.fromEntries(n.interfaces.map((i) => [i.ifname, i.addresses]))])));
    this.vnis = made((p) => p.vnis);
    this.allocations = allocation.allocations;
    this.topologyDot = made((p) => p.dot);
    this.topologyMermaid = made((p) => p.mermaid);
    this.registerOutputs({
      addresses: this.addresses,
      vnis: this.vnis,
      allocations: this.allocations,
      topologyDot: this.topologyDot,
      topologyMermaid: this.topologyMermaid,
    });
  }

  /**
   * The cables of one link or LAN: a veth pair between the namespaces for a link within a host;
   * otherwise a bridge per host, each member's veth with its host end on it, and across hosts one
   * VXLAN device on each bridge that floods to every other host. Returns each member's interface for its
   * addresses and impairment. `made` is the segment as made (its VNI). A new link that takes over an
   * endpoint of a link gone since the last run (`succession`) names the cable on it after the old link's,
   * as an alias: the engine then replaces that cable, old first, where a new resource would be made beside
   * it and find its interface name taken.
   */
  private cable(
    name: string,
    segment: SegmentPlan,
    hosts: Record<string, LabHost>,
    namespaceOf: (node: string) => pulumi.Output<string>,
    made: pulumi.Output<SegmentPlan>,
    succession: pulumi.Output<Succession | undefined>,
    add: <R extends pulumi.Resource>(resource: R) => R,
  ): (MemberPlan & { device: pulumi.Output<string> })[] {
    const child = { parent: this };
    const { mtu } = segment;
    // The old cable's name: a link within a host named it after the link, one across hosts after the
    // endpoint. Without a succession the alias is the cable's own name, which the engine looks up first anyway.
    const succeeding = (own: string, endpoint?: string) => ({
      ...child,
      aliases: [
        succession.apply((s) => ({ name: `${name}/${s && (!endpoint || s.endpoint === endpoint) ? (s.spanning ? s.endpoint : s.from) : own}` })),
      ],
    });
    if (segment.bridges.length === 0) {
      // Ends in the order of the link's identity: naming them the other way round replaces nothing.
      const [a, b] = [...segment.members].sort((x, y) => (x.endpoint < y.endpoint ? -1 : 1));
      const up = !a.down;
      const veth = add(
        new Veth(
          `${name}/${segment.id}`,
          { connection: hosts[a.host], name: a.ifname, namespace: namespaceOf(a.node), mtu, up, peer: { name: b.ifname, namespace: namespaceOf(b.node), up } },
          succeeding(segment.id),
        ),
      );
      return [
        { ...a, device: veth.name },
        { ...b, device: veth.peer.apply((peer) => peer.name) },
      ];
    }
    const bridges = new Map(
      segment.bridges.map((b) => [b.host, add(new Bridge(`${name}/${segment.id}/${b.host}`, { connection: hosts[b.host], name: b.name, mtu }, child))]),
    );
    for (const end of segment.vxlan?.ends ?? []) {
      add(new Vxlan(
        `${name}/${segment.id}/${end.host}`,
        {
          connection: hosts[end.host],
          name: end.name,
          vni: made.apply((s) => s.vxlan!.vni),
          local: end.local,
          // Flood entries on any number of hosts: a segment grows and shrinks in place.
          remotes: end.remotes,
          dstport: segment.vxlan!.port,
          device: end.device,
          master: bridges.get(end.host)!.name,
          mtu,
        },
        child,
      ));
    }
    return segment.members.map((m) => {
      const up = !m.down;
      const veth = add(
        new Veth(
          `${name}/${m.endpoint}`,
          { connection: hosts[m.host], name: m.ifname, namespace: namespaceOf(m.node), mtu, up, peer: { name: m.hostVeth!, master: bridges.get(m.host)!.name, up } },
          segment.kind === "link" ? succeeding(m.endpoint, m.endpoint) : child,
        ),
      );
      return { ...m, device: veth.name };
    });
  }
}
