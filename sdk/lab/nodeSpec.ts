/** A planned node as a LabNode's inputs (pure): its cables, addresses, routes and forwarding. */
import type { LabNodeInput, LabNodeInterface } from "../../provider/kinds/labNode";
import type { LabPlan, NodePlan, SegmentPlan } from "./plan";

const segmentOf = (plan: LabPlan, id: string) => [...plan.links, ...plan.lans].find((s) => s.id === id)!;

/** The node of a same-host link that makes its veth pair: the first by name (the other is made after it). */
export const pairMaker = (segment: SegmentPlan) => [...segment.members].map((m) => m.node).sort()[0];

/** The MTU of a segment's cables, bridges and VXLAN ports: the kernel's 1500 when neither the topology nor a tunnel sets one. */
export const segmentMtu = (segment: SegmentPlan) => segment.mtu ?? 1500;

export function labNodeSpec(plan: LabPlan, node: NodePlan): LabNodeInput {
  const interfaces: Record<string, LabNodeInterface> = {};
  for (const i of node.interfaces) {
    const segment = segmentOf(plan, i.segment);
    const member = segment.members.find((m) => m.node === node.name && m.ifname === i.ifname)!;
    const bridge = segment.bridges.find((b) => b.host === node.host);
    const other = segment.members.find((m) => m !== member)!;
    interfaces[i.ifname] = {
      ...(bridge
        ? { bridge: { name: bridge.name, hostEnd: member.hostVeth! } }
        : {
            pair: {
              park: segment.park!,
              role: pairMaker(segment) === node.name ? "make" : "take",
              namespace: other.namespace,
              interface: other.ifname,
            },
          }),
      mtu: segmentMtu(segment),
      up: !i.down,
      addresses: i.addresses,
    };
  }
  return {
    name: node.namespace,
    interfaces,
    routes: node.routes.map((r) => ({
      destination: r.destination,
      via: r.via,
      device: r.device,
      ...(r.metric !== undefined ? { metric: r.metric } : {}),
    })),
    forwarding: node.forwarding,
  };
}
