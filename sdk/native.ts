/**
 * pulumi-netns on the native provider (`pulumi-resource-netns`): the same resources as the package's main
 * entry, with the type tokens of schema.json (`netns:index:Veth`), and the connection given once per host
 * as a `Provider` that resources take through `opts.provider`.
 */
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { connection, PROVIDER_SECRETS } from "../provider/connection";
import { Kind, typeToken } from "../provider/kind";
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
import { LAB_ALLOCATION, LabAllocations } from "../provider/lab/allocation";
import { ChildClasses, LabArgs, LabComponent } from "./lab/component";
import { ArgsOf, Inputs, outputKeys, OutputsOf } from "./resource";

type Connection = z.input<typeof connection>;
/** How to reach the host over SSH: `host`, and a credential (privateKey, password or agent). */
export type ProviderArgs = { [P in keyof Connection]: Inputs<Connection[P]> };

/** The connection to one host; every resource given this provider is made there. Credentials are secrets. */
export class Provider extends pulumi.ProviderResource {
  constructor(name: string, args: ProviderArgs, opts?: pulumi.ResourceOptions) {
    const secrets = Object.fromEntries(PROVIDER_SECRETS.filter((key) => args[key] !== undefined).map((key) => [key, pulumi.secret(args[key]!)]));
    super("netns", name, { ...args, ...secrets }, opts);
  }
}

export type NativeArgsOf<K extends Kind<any>> = Omit<ArgsOf<K>, "connection">;
type NativeResource<K extends Kind<any>> = pulumi.CustomResource & Omit<OutputsOf<K>, "connection">;
type NativeClass<K extends Kind<any>> = new (name: string, args: NativeArgsOf<K>, opts?: pulumi.CustomResourceOptions) => NativeResource<K>;

/** One class for a kind: its inputs, and every output it reports, under the schema's type token. */
function nativeClass<K extends Kind<any>>(kind: K): NativeClass<K> {
  return class extends pulumi.CustomResource {
    constructor(name: string, args: NativeArgsOf<K>, opts?: pulumi.CustomResourceOptions) {
      super(typeToken(kind.name), name, { ...Object.fromEntries(outputKeys(kind).map((key) => [key, undefined])), ...args }, opts);
    }
  } as unknown as NativeClass<K>;
}

export const Namespace = nativeClass(namespaceKind);
export type Namespace = InstanceType<typeof Namespace>;
export const Veth = nativeClass(vethKind);
export type Veth = InstanceType<typeof Veth>;
export const Bridge = nativeClass(bridgeKind);
export type Bridge = InstanceType<typeof Bridge>;
export const Address = nativeClass(addressKind);
export type Address = InstanceType<typeof Address>;
export const Route = nativeClass(routeKind);
export type Route = InstanceType<typeof Route>;
export const Masquerade = nativeClass(masqueradeKind);
export type Masquerade = InstanceType<typeof Masquerade>;
export const PortForward = nativeClass(portForwardKind);
export type PortForward = InstanceType<typeof PortForward>;
export const Sysctl = nativeClass(sysctlKind);
export type Sysctl = InstanceType<typeof Sysctl>;
export const Vxlan = nativeClass(vxlanKind);
export type Vxlan = InstanceType<typeof Vxlan>;
export const Netem = nativeClass(netemKind);
export type Netem = InstanceType<typeof Netem>;
export const Service = nativeClass(serviceKind);
export type Service = InstanceType<typeof Service>;
export const Check = nativeClass(checkKind);
export type Check = InstanceType<typeof Check>;
export const LabNode = nativeClass(labNodeKind);
export type LabNode = InstanceType<typeof LabNode>;

/** A Lab's subnets, addresses and VNIs, kept from run to run (provider/lab/allocation.ts); nothing on any host. */
class LabAllocation extends pulumi.CustomResource {
  declare readonly allocations: pulumi.Output<LabAllocations>;
  constructor(name: string, args: Record<string, unknown>, opts: pulumi.CustomResourceOptions) {
    super(typeToken(LAB_ALLOCATION), name, { ...args, allocations: undefined }, opts);
  }
}

const labChildren = { Bridge, Vxlan, LabNode, Netem, Service, Check } as unknown as ChildClasses;

/**
 * A topology over one or more hosts as one component (sdk/lab/component.ts), on the native provider: one
 * Provider per host (a child named LAB/HOST) from the host's connection, and the children on it.
 */
export class Lab extends LabComponent {
  constructor(name: string, args: LabArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts, (lab) => {
      const providers = Object.fromEntries(Object.entries(args.hosts).map(([host, c]) => [host, new Provider(`${name}/${host}`, c, { parent: lab })]));
      return {
        make: (kind, child, host, childArgs, childOpts) => new labChildren[kind](child, childArgs, { ...childOpts, provider: providers[host] }),
        // It touches no host; any of the Lab's providers serves it.
        allocation: (child, allocationArgs, childOpts) => new LabAllocation(child, allocationArgs, { ...childOpts, provider: Object.values(providers)[0] }),
        nodeAliases: [],
      };
    });
  }
}

export { endImpairment } from "./lab/component";
export type { LabArgs, LabHost } from "./lab/component";
export { LabTopologyError, planLab } from "./lab/model";
export type { LabAllocations, LabPlan, LabSpec, LinkImpairment } from "./lab/model";
