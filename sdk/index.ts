/**
 * pulumi-netns: Linux network namespaces, veth cables, bridges, addresses, routes, sysctls,
 * iptables NAT, VXLAN cables between hosts and netem link impairment as Pulumi resources, managed over SSH.
 */
import * as pulumi from "@pulumi/pulumi";
import { addressKind } from "../provider/kinds/address";
import { bridgeKind } from "../provider/kinds/bridge";
import { checkKind } from "../provider/kinds/check";
import { labNodeKind } from "../provider/kinds/labNode";
import { masqueradeKind } from "../provider/kinds/masquerade";
import { namespaceKind } from "../provider/kinds/namespace";
import { netemKind } from "../provider/kinds/netem";
import { portForwardKind } from "../provider/kinds/portForward";
import { routeKind } from "../provider/kinds/route";
import { serviceKind } from "../provider/kinds/service";
import { sysctlKind } from "../provider/kinds/sysctl";
import { vethKind } from "../provider/kinds/veth";
import { vxlanKind } from "../provider/kinds/vxlan";
import { LabAllocation, LabAllocationArgs } from "./lab/allocation";
import { ChildClasses, LabArgs, LabComponent } from "./lab/component";
import { ArgsOf, OutputsOf, registration } from "./resource";

export type { ConnectionArgs } from "./resource";
type Options = pulumi.CustomResourceOptions;

export type NamespaceArgs = ArgsOf<typeof namespaceKind>;
export interface Namespace extends OutputsOf<typeof namespaceKind> {}
/** A named network namespace (`ip netns add`), loopback up. */
export class Namespace extends pulumi.dynamic.Resource {
  constructor(name: string, args: NamespaceArgs, opts?: Options) {
    super(...registration(namespaceKind, name, args, opts));
  }
}

export type VethArgs = ArgsOf<typeof vethKind>;
export interface Veth extends OutputsOf<typeof vethKind> {}
/** A veth pair: each end optionally in a namespace, the peer optionally on a bridge. */
export class Veth extends pulumi.dynamic.Resource {
  constructor(name: string, args: VethArgs, opts?: Options) {
    super(...registration(vethKind, name, args, opts));
  }
}

export type BridgeArgs = ArgsOf<typeof bridgeKind>;
export interface Bridge extends OutputsOf<typeof bridgeKind> {}
/** A Linux bridge, optionally inside a namespace. */
export class Bridge extends pulumi.dynamic.Resource {
  constructor(name: string, args: BridgeArgs, opts?: Options) {
    super(...registration(bridgeKind, name, args, opts));
  }
}

export type AddressArgs = ArgsOf<typeof addressKind>;
export interface Address extends OutputsOf<typeof addressKind> {}
/** An IP address with prefix length on an interface. */
export class Address extends pulumi.dynamic.Resource {
  constructor(name: string, args: AddressArgs, opts?: Options) {
    super(...registration(addressKind, name, args, opts));
  }
}

export type RouteArgs = ArgsOf<typeof routeKind>;
export interface Route extends OutputsOf<typeof routeKind> {}
/** A route (including `default`) in a namespace or on the host. */
export class Route extends pulumi.dynamic.Resource {
  constructor(name: string, args: RouteArgs, opts?: Options) {
    super(...registration(routeKind, name, args, opts));
  }
}

export type MasqueradeArgs = ArgsOf<typeof masqueradeKind>;
export interface Masquerade extends OutputsOf<typeof masqueradeKind> {
  /** The rules present on the host, as iptables arguments. */
  readonly rules: pulumi.Output<string[]>;
}
/** Source NAT (MASQUERADE) for a network. */
export class Masquerade extends pulumi.dynamic.Resource {
  constructor(name: string, args: MasqueradeArgs, opts?: Options) {
    super(...registration(masqueradeKind, name, args, opts));
  }
}

export type PortForwardArgs = ArgsOf<typeof portForwardKind>;
export interface PortForward extends OutputsOf<typeof portForwardKind> {
  /** The rules present on the host, as iptables arguments. */
  readonly rules: pulumi.Output<string[]>;
}
/** Destination NAT from a host port to ADDRESS:PORT. */
export class PortForward extends pulumi.dynamic.Resource {
  constructor(name: string, args: PortForwardArgs, opts?: Options) {
    super(...registration(portForwardKind, name, args, opts));
  }
}

export type SysctlArgs = ArgsOf<typeof sysctlKind>;
export interface Sysctl extends OutputsOf<typeof sysctlKind> {
  /** The value before this resource set it; restored on destroy. */
  readonly previous: pulumi.Output<string>;
}
/** A kernel setting such as net.ipv4.ip_forward, restored on destroy. */
export class Sysctl extends pulumi.dynamic.Resource {
  constructor(name: string, args: SysctlArgs, opts?: Options) {
    super(...registration(sysctlKind, name, args, opts));
  }
}

export type VxlanArgs = ArgsOf<typeof vxlanKind>;
export interface Vxlan extends OutputsOf<typeof vxlanKind> {}
/** A VXLAN device: a layer-2 cable to another host, optionally in a namespace and on a bridge. */
export class Vxlan extends pulumi.dynamic.Resource {
  constructor(name: string, args: VxlanArgs, opts?: Options) {
    super(...registration(vxlanKind, name, args, opts));
  }
}

export type NetemArgs = ArgsOf<typeof netemKind>;
export interface Netem extends OutputsOf<typeof netemKind> {}
/** Delay, jitter, loss, corruption, duplication, reordering and a rate limit on an interface's outgoing packets. */
export class Netem extends pulumi.dynamic.Resource {
  constructor(name: string, args: NetemArgs, opts?: Options) {
    super(...registration(netemKind, name, args, opts));
  }
}

export type ServiceArgs = ArgsOf<typeof serviceKind>;
export interface Service extends OutputsOf<typeof serviceKind> {}
/** A long-running process in a namespace, supervised on the host, with a readiness check and a capped log. */
export class Service extends pulumi.dynamic.Resource {
  constructor(name: string, args: ServiceArgs, opts?: Options) {
    super(...registration(serviceKind, name, args, opts));
  }
}

export type CheckArgs = ArgsOf<typeof checkKind>;
export interface Check extends OutputsOf<typeof checkKind> {}
/** Declared reachability from a namespace (ICMP, TCP, UDP); fails `up` when it does not hold, and refresh runs it again. */
export class Check extends pulumi.dynamic.Resource {
  constructor(name: string, args: CheckArgs, opts?: Options) {
    super(...registration(checkKind, name, args, opts));
  }
}

export type LabNodeArgs = ArgsOf<typeof labNodeKind>;
export interface LabNode extends OutputsOf<typeof labNodeKind> {}
/** One Lab node as one resource: namespace, cable interfaces, addresses, routes and forwarding (the Lab makes these). */
export class LabNode extends pulumi.dynamic.Resource {
  constructor(name: string, args: LabNodeArgs, opts?: Options) {
    super(...registration(labNodeKind, name, args, opts));
  }
}

const labChildren = { Bridge, Vxlan, LabNode, Netem, Service, Check } as unknown as ChildClasses;

/** A topology over one or more hosts as one component (sdk/lab/component.ts); each child carries its host's connection. */
export class Lab extends LabComponent {
  constructor(name: string, args: LabArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts, () => ({
      make: (kind, child, host, childArgs, childOpts) => new labChildren[kind](child, { connection: args.hosts[host], ...childArgs }, childOpts),
      allocation: (child, allocationArgs, childOpts) => new LabAllocation(child, allocationArgs as unknown as LabAllocationArgs, childOpts),
      // A stack made before LabNode has the node's namespace as a Namespace of this name: the node takes it over, in place.
      nodeAliases: [{ type: "pulumi-nodejs:dynamic/netns:Namespace" }],
    }));
  }
}

export { endImpairment } from "./lab/component";
export type { LabArgs, LabHost } from "./lab/component";
export { LabTopologyError, planLab } from "./lab/model";
export type { LabAllocations, LabPlan, LabSpec, LinkImpairment } from "./lab/model";
