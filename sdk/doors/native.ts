/**
 * The native door (`pulumi-netns/native`, the plugin `pulumi-resource-netns`): the same resources with the
 * type tokens of schema.json (`netns:index:Veth`), and the connection given once per host as a `Provider`
 * that resources take through `opts.provider`.
 */
import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import { connection, PROVIDER_SECRETS } from "../../provider/connection";
import { Kind, typeToken } from "../../provider/kind";
import { LAB_ALLOCATION, LabAllocations } from "../../provider/lab/allocation";
import { ChildClasses, LabAllocationArgs, LabArgs, LabComponent } from "../lab/component";
import { ArgsOf, ComputedOutputsOf, Inputs, KindClass, kindClasses, KindName, KindNamed, outputKeys, OutputsOf } from "../resource";

type Connection = z.input<typeof connection>;
/** How to reach the host over SSH: `host`, and a credential (privateKey, password or agent). */
export type ProviderArgs = { [P in keyof Connection]: Inputs<Connection[P]> };

/** The connection to one host; every resource given this provider is made there. Credentials are secrets. */
export class Provider extends pulumi.ProviderResource {
  constructor(name: string, args: ProviderArgs, opts?: pulumi.ResourceOptions) {
    const secrets = Object.fromEntries(
      PROVIDER_SECRETS.filter((key) => args[key] !== undefined).map((key) => [key, pulumi.secret(args[key]!)]),
    );
    super("netns", name, { ...args, ...secrets }, opts);
  }
}

export type NativeArgsOf<K extends Kind<any>> = Omit<ArgsOf<K>, "connection">;

/** Each kind's class: its inputs, and every output it reports, under the schema's type token. */
type NativeClass<N extends KindName> = KindClass<
  typeof pulumi.CustomResource,
  Omit<ArgsOf<KindNamed<N>>, "connection">,
  pulumi.CustomResource & Omit<OutputsOf<KindNamed<N>>, "connection"> & ComputedOutputsOf<N>
>;
const classes = kindClasses(pulumi.CustomResource, (kind, name, args, opts) => [
  typeToken(kind.name),
  name,
  { ...Object.fromEntries(outputKeys(kind).map((key) => [key, undefined])), ...args },
  opts,
]) as { [N in KindName]: NativeClass<N> };

export const Namespace = classes.Namespace;
export type Namespace = InstanceType<typeof Namespace>;
export const Veth = classes.Veth;
export type Veth = InstanceType<typeof Veth>;
export const Bridge = classes.Bridge;
export type Bridge = InstanceType<typeof Bridge>;
export const Address = classes.Address;
export type Address = InstanceType<typeof Address>;
export const Route = classes.Route;
export type Route = InstanceType<typeof Route>;
export const Masquerade = classes.Masquerade;
export type Masquerade = InstanceType<typeof Masquerade>;
export const PortForward = classes.PortForward;
export type PortForward = InstanceType<typeof PortForward>;
export const Sysctl = classes.Sysctl;
export type Sysctl = InstanceType<typeof Sysctl>;
export const Vxlan = classes.Vxlan;
export type Vxlan = InstanceType<typeof Vxlan>;
export const Netem = classes.Netem;
export type Netem = InstanceType<typeof Netem>;
export const Service = classes.Service;
export type Service = InstanceType<typeof Service>;
export const Check = classes.Check;
export type Check = InstanceType<typeof Check>;
export const LabNode = classes.LabNode;
export type LabNode = InstanceType<typeof LabNode>;
export const LabSegment = classes.LabSegment;
export type LabSegment = InstanceType<typeof LabSegment>;

/** A Lab's subnets, addresses and VNIs, kept from run to run (provider/lab/allocation.ts); nothing on any host. */
class LabAllocation extends pulumi.CustomResource {
  declare readonly allocations: pulumi.Output<LabAllocations>;
  constructor(name: string, args: LabAllocationArgs, opts: pulumi.CustomResourceOptions) {
    super(typeToken(LAB_ALLOCATION), name, { ...args, allocations: undefined }, opts);
  }
}

/**
 * A topology over one or more hosts as one component (sdk/lab/component.ts), on the native provider: one
 * Provider per host (a child named LAB/HOST) from the host's connection, and the children on it.
 */
export class Lab extends LabComponent {
  constructor(name: string, args: LabArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts, (lab) => {
      const providers = Object.fromEntries(
        Object.entries(args.hosts).map(([host, c]) => [host, new Provider(`${name}/${host}`, c, { parent: lab })]),
      );
      return {
        name: "native",
        make: (kind, child, host, childArgs, childOpts) =>
          new (classes as unknown as ChildClasses)[kind](child, childArgs, { ...childOpts, provider: providers[host] }),
        // It touches no host; any of the Lab's providers serves it.
        allocation: (child, allocationArgs, childOpts) =>
          new LabAllocation(child, allocationArgs, { ...childOpts, provider: Object.values(providers)[0] }),
        nodeAliases: [],
        // A stack made before LabSegment has a Bridge where each LabSegment is (and a Vxlan, which goes).
        segmentAliases: [{ type: typeToken("Bridge") }],
      };
    });
  }
}
