/**
 * The dynamic door (the package's main entry): a class per kind whose resources carry their host's
 * connection, served by the dynamic provider that the shim (sdk/shim.ts) loads from the installed package.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import type { Kind, Props } from "../../provider/kind";
import { LAB_ALLOCATION, LabAllocations } from "../../provider/lab/allocation";
import { ChildClasses, LabAllocationArgs, LabArgs, LabComponent } from "../lab/component";
import { ArgsOf, ComputedOutputsOf, KindClass, kindClasses, KindName, KindNamed, outputKeys, OutputsOf } from "../resource";
import { shim } from "../shim";

/** One shim per kind, so Pulumi serializes each kind's provider once, not once per resource. */
const shims = new Map<string, pulumi.dynamic.ResourceProvider>();
function shimFor(kind: string): pulumi.dynamic.ResourceProvider {
  if (!shims.has(kind)) shims.set(kind, shim(kind));
  return shims.get(kind)!;
}

/**
 * The resource's owner as objects on the host carry it (provider/owner.ts): a hash of what makes its URN
 * unique (stack, project, parent, type, name), and its project and stack. A dynamic provider's create is
 * not told the URN, so it comes as an input; a plain string, so no child waits on its parent's URN.
 */
function ownerOf(kind: Kind, name: string, opts?: pulumi.CustomResourceOptions): string {
  const parent = opts?.parent as unknown as { __pulumiType?: string; __name?: string } | undefined;
  const identity = [pulumi.getStack(), pulumi.getProject(), parent?.__pulumiType, parent?.__name, `netns:${kind.name}`, name];
  const hash = createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 16);
  return `${hash}@${pulumi.getProject()}/${pulumi.getStack()}`;
}

/**
 * What a class passes to `pulumi.dynamic.Resource`. The connection (with its credentials) is a secret input
 * and a secret output, so state holds it only encrypted.
 */
function registration(kind: Kind, name: string, args: Props, opts?: pulumi.CustomResourceOptions) {
  const props = {
    ...Object.fromEntries(outputKeys(kind).map((key) => [key, undefined])),
    ...args,
    connection: pulumi.secret(args.connection as pulumi.Input<Record<string, unknown>>),
    owner: ownerOf(kind, name, opts),
  };
  const secretOutputs = [...(opts?.additionalSecretOutputs ?? []), "connection"];
  return [shimFor(kind.name), name, props, { ...opts, additionalSecretOutputs: secretOutputs }, "netns", kind.name];
}

type DynamicClass<N extends KindName> = KindClass<
  typeof pulumi.dynamic.Resource,
  ArgsOf<KindNamed<N>>,
  pulumi.dynamic.Resource & OutputsOf<KindNamed<N>> & ComputedOutputsOf<N>
>;
const classes = kindClasses(pulumi.dynamic.Resource, registration) as { [N in KindName]: DynamicClass<N> };

export type { ConnectionArgs } from "../resource";

/** A named network namespace (`ip netns add`), loopback up. */
export const Namespace = classes.Namespace;
export type Namespace = InstanceType<typeof Namespace>;
export type NamespaceArgs = ArgsOf<KindNamed<"Namespace">>;
/** A veth pair: each end optionally in a namespace, the peer optionally on a bridge. */
export const Veth = classes.Veth;
export type Veth = InstanceType<typeof Veth>;
export type VethArgs = ArgsOf<KindNamed<"Veth">>;
/** A Linux bridge, optionally inside a namespace. */
export const Bridge = classes.Bridge;
export type Bridge = InstanceType<typeof Bridge>;
export type BridgeArgs = ArgsOf<KindNamed<"Bridge">>;
/** An IP address with prefix length on an interface. */
export const Address = classes.Address;
export type Address = InstanceType<typeof Address>;
export type AddressArgs = ArgsOf<KindNamed<"Address">>;
/** A route (including `default`) in a namespace or on the host. */
export const Route = classes.Route;
export type Route = InstanceType<typeof Route>;
export type RouteArgs = ArgsOf<KindNamed<"Route">>;
/** Source NAT (MASQUERADE) for a network. */
export const Masquerade = classes.Masquerade;
export type Masquerade = InstanceType<typeof Masquerade>;
export type MasqueradeArgs = ArgsOf<KindNamed<"Masquerade">>;
/** Destination NAT from a host port to ADDRESS:PORT. */
export const PortForward = classes.PortForward;
export type PortForward = InstanceType<typeof PortForward>;
export type PortForwardArgs = ArgsOf<KindNamed<"PortForward">>;
/** A kernel setting such as net.ipv4.ip_forward, restored on destroy. */
export const Sysctl = classes.Sysctl;
export type Sysctl = InstanceType<typeof Sysctl>;
export type SysctlArgs = ArgsOf<KindNamed<"Sysctl">>;
/** A VXLAN device: a layer-2 cable to another host, optionally in a namespace and on a bridge. */
export const Vxlan = classes.Vxlan;
export type Vxlan = InstanceType<typeof Vxlan>;
export type VxlanArgs = ArgsOf<KindNamed<"Vxlan">>;
/** Delay, jitter, loss, corruption, duplication, reordering and a rate limit on an interface's outgoing packets. */
export const Netem = classes.Netem;
export type Netem = InstanceType<typeof Netem>;
export type NetemArgs = ArgsOf<KindNamed<"Netem">>;
/** A long-running process in a namespace, supervised on the host, with a readiness check and a capped log. */
export const Service = classes.Service;
export type Service = InstanceType<typeof Service>;
export type ServiceArgs = ArgsOf<KindNamed<"Service">>;
/** Declared reachability from a namespace (ICMP, TCP, UDP); fails `up` when it does not hold, and refresh runs it again. */
export const Check = classes.Check;
export type Check = InstanceType<typeof Check>;
export type CheckArgs = ArgsOf<KindNamed<"Check">>;
/** One Lab node as one resource: namespace, cable interfaces, addresses, routes and forwarding (the Lab makes these). */
export const LabNode = classes.LabNode;
export type LabNode = InstanceType<typeof LabNode>;
export type LabNodeArgs = ArgsOf<KindNamed<"LabNode">>;
/** One host's part of a Lab segment as one resource: its bridge and VXLAN port (the Lab makes these). */
export const LabSegment = classes.LabSegment;
export type LabSegment = InstanceType<typeof LabSegment>;
export type LabSegmentArgs = ArgsOf<KindNamed<"LabSegment">>;

/** A Lab's subnets, addresses and VNIs, kept where they were from one run to the next; nothing on any host. */
class LabAllocation extends pulumi.dynamic.Resource {
  declare readonly allocations: pulumi.Output<LabAllocations>;
  constructor(name: string, args: LabAllocationArgs, opts: pulumi.CustomResourceOptions) {
    super(shimFor(LAB_ALLOCATION), name, { ...args, allocations: undefined }, opts, "netns", LAB_ALLOCATION);
  }
}

/** A topology over one or more hosts as one component (sdk/lab/component.ts); each child carries its host's connection. */
export class Lab extends LabComponent {
  constructor(name: string, args: LabArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, args, opts, () => ({
      name: "dynamic",
      make: (kind, child, host, childArgs, childOpts) =>
        new (classes as unknown as ChildClasses)[kind](child, { connection: args.hosts[host], ...childArgs }, childOpts),
      allocation: (child, allocationArgs, childOpts) => new LabAllocation(child, allocationArgs, childOpts),
      // A stack made before LabNode existed has each node's namespace as a Namespace of its name: the node
      // takes it over in place (test/e2e/labUpgrade.test.ts).
      nodeAliases: [{ type: "pulumi-nodejs:dynamic/netns:Namespace" }],
      // A stack made before LabSegment has a Bridge where each LabSegment is (and a Vxlan, which goes).
      segmentAliases: [{ type: "pulumi-nodejs:dynamic/netns:Bridge" }],
    }));
  }
}
