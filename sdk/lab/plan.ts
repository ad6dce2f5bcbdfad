/**
 * A Lab's plan: every namespace, cable, bridge, tunnel end, address, route and check its topology makes,
 * as plain data. The planner (planner.ts) makes it; the component turns it into resources and the
 * renderer (graph.ts) into pictures.
 */
import type { CheckTarget } from "../../provider/kindSettings";
import type { LabAllocations, LabDemand } from "../../provider/lab/allocation";
import type { LabServiceSettings, LinkImpairment } from "./spec";

export interface MemberPlan {
  node: string;
  host: string;
  namespace: string;
  ifname: string;
  /** "node:ifname". */
  endpoint: string;
  /** With prefix length, IPv4 first. */
  addresses: string[];
  /** The veth's end on the host, on the segment's bridge; unset for a same-host link (a direct veth pair). */
  hostVeth?: string;
  /** Both ends of its cable are down (the link's `down`, or the LAN member's). */
  down?: true;
}

export interface VxlanEndPlan {
  host: string;
  /** Device name on the host (on the bridge). */
  name: string;
  local: string;
  /** Every other host's underlay address, sorted: broadcasts are copied to each. */
  remotes: string[];
  /** Underlay interface on the host. */
  device: string;
}

export interface SegmentPlan {
  kind: "link" | "lan";
  /** Identity: a link's two endpoints in sorted order joined by "--", a LAN's name. Stable child names come from it. */
  id: string;
  /** Subnets with prefix, IPv4 first. */
  subnets: string[];
  members: MemberPlan[];
  mtu?: number;
  impairment?: LinkImpairment;
  /** Per host the segment touches, its bridge; empty for a same-host link. */
  bridges: { host: string; name: string }[];
  /**
   * A same-host link's veth pair is made by its first node (by name) with the other end in the host's
   * namespace under this name, until the second node takes it (see provider/kinds/labNode.ts).
   */
  park?: string;
  /** Set when the segment spans hosts. */
  vxlan?: { vni: number; port: number; ends: VxlanEndPlan[] };
}

export interface RoutePlan {
  destination: string;
  via: string;
  device: string;
  metric?: number;
}

export interface NodePlan {
  name: string;
  host: string;
  namespace: string;
  router: boolean;
  interfaces: { ifname: string; segment: string; addresses: string[]; down?: true }[];
  routes: RoutePlan[];
  /** IP forwarding per family: a router has it in each family it has addresses in. */
  forwarding: { ipv4: boolean; ipv6: boolean };
  services: Record<string, LabServiceSettings>;
  /** What this node's Check probes: explicit expectations from it, and "all-pairs". */
  checks: CheckTarget[];
}

export interface LabPlan {
  hosts: Record<string, { underlay: string }>;
  nodes: NodePlan[];
  links: SegmentPlan[];
  lans: SegmentPlan[];
  /** Segment id → VNI, for the segments that span hosts. */
  vnis: Record<string, number>;
  /** Every subnet, address and VNI; as `previous`, every seat in it is kept. */
  allocations: LabAllocations;
  /** What the allocation was made from (the LabAllocation resource's input). */
  demand: LabDemand;
}

/** A link or LAN as the topology declares it, its endpoints checked; what allocation and planning start from. */
export interface Segment {
  kind: "link" | "lan";
  id: string;
  label: string;
  members: { node: string; ifname: string; endpoint: string; down?: true }[];
  mtu?: number;
  impairment?: LinkImpairment;
  /** Explicit addresses by endpoint. */
  addresses?: Record<string, string[]>;
}

/** A segment as one node sees it: the segment, and the node's member of it. */
export interface Attachment {
  segment: SegmentPlan;
  member: MemberPlan;
}
