/**
 * What a Lab takes: its topology as a zod schema (the planner's first check, and schema.json's Lab) and
 * the types a program writes it in. The planner (planner.ts) says how it becomes objects.
 */
import { z } from "zod";
import { cidr, hostName, interfaceName, ipAddress, mtu, networkCidr, port } from "../../provider/fields";
import { impairmentShape, serviceSettingsShape } from "../../provider/kindSettings";
import { labAllocations, poolsSpec } from "../../provider/lab/allocation";

const name = z
  .string()
  .max(64)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, { message: "may use letters, digits and _ . - (not first)" });

/** "node:ifname"; the parts are checked once the nodes are known. */
const endpoint = z.string().regex(/^[^:\s]+:[^:\s]+$/, { message: 'an endpoint is "node:ifname", e.g. "r1:eth1"' });

/** Explicit addresses: endpoint → its addresses with prefix (one per family). */
const explicitAddresses = z.record(endpoint, z.array(cidr).min(1).max(2)).optional();

/** A link's impairment: Netem's settings without the interface, unknown keys refused (a typo would impair nothing). */
const impairment = z.object(impairmentShape).strict();
export type LinkImpairment = z.infer<typeof impairment>;

/** A node's service: Service's settings without where it runs (the node's namespace) or its name (its key). */
const serviceSettings = z.object(serviceSettingsShape).strict();
export type LabServiceSettings = z.infer<typeof serviceSettings>;

/**
 * What should be reachable: `to` is a node (its first address, on an interface that is up if it has one), "node:PORT"
 * (tcp unless `protocol` says udp), or an address. "all-pairs" adds every node to every other, by ICMP.
 */
const expectation = z
  .object({
    from: z.string(),
    to: z.string().min(1),
    protocol: z.enum(["icmp", "tcp", "udp"]).optional(),
    port: port.optional(),
    expect: z.enum(["reachable", "unreachable"]).optional(),
    maxLossPercent: z.number().min(0).max(100).optional(),
    maxRttMs: z.number().positive().optional(),
  })
  .strict();

/** A LAN member: its endpoint, or the endpoint and whether its cable is pulled. */
const lanMember = z.union([endpoint, z.object({ endpoint, down: z.boolean().optional() }).strict()]);

/** A static route's metric: the kernel's 32-bit priority. */
const metric = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);

export const labSpec = z.object({
  /** Host name → SSH connection; only `host` is read here (the underlay address, unless `underlay` says). */
  hosts: z.record(name, z.looseObject({ host: hostName })),
  nodes: z.record(
    name,
    z.object({
      host: z.string(),
      router: z.boolean().optional(),
      /**
       * Static routes. `via` is a node sharing a link or LAN with this one (its address there is the
       * gateway; "node:ifname" picks one of several shared segments), or a gateway address on one of this
       * node's subnets. `destination: "default"` via a node gives a default route in each family both have.
       */
      routes: z
        .array(z.object({ destination: z.union([z.literal("default"), networkCidr]), via: z.string().min(1), metric: metric.optional() }))
        .optional(),
      /** Long-running processes in the node's namespace, started once its addresses and routes exist. */
      services: z.record(name, serviceSettings).optional(),
    }),
  ),
  links: z
    .array(
      z.object({
        endpoints: z.tuple([endpoint, endpoint]),
        mtu: mtu.optional(),
        /** Netem settings for the link; the Lab splits them over both ends (see endImpairment). */
        impairment: impairment.optional(),
        addresses: explicitAddresses,
        /** Both ends administratively down, as a pulled cable; false or unset brings them up again, in place. */
        down: z.boolean().optional(),
      }),
    )
    .optional(),
  lans: z.record(name, z.object({ members: z.array(lanMember).min(1), mtu: mtu.optional(), addresses: explicitAddresses })).optional(),
  /** Declared reachability, checked by one Check per source node after everything else is made. */
  expect: z.union([z.literal("all-pairs"), z.array(z.union([z.literal("all-pairs"), expectation]))]).optional(),
  pools: poolsSpec.optional(),
  /** Prepended to node names to make namespace names; also salts generated device names and VNIs. */
  namespacePrefix: z.string().optional(),
  /** VXLAN UDP port (the kernel's own default, 8472, is not the IANA one). */
  vxlanPort: port.optional(),
  /** Host name → underlay address for VXLAN, where the connection's `host` is not it (a DNS name, a NAT). */
  underlay: z.record(name, ipAddress).optional(),
  /** Host name → the interface VXLAN packets leave by (default eth0); its MTU sets the tunnel's default MTU. */
  underlayDevice: z.record(name, interfaceName).optional(),
  /** Host name → the MTU of its underlay (default 1500); VXLAN's overhead comes off it. */
  underlayMtu: z.record(name, mtu).optional(),
  previous: labAllocations.optional(),
});

/** A topology as a program writes it (defaults still to apply). */
export type LabSpec = z.input<typeof labSpec>;
/** A topology as the planner reads it, checked. */
export type CheckedLabSpec = z.infer<typeof labSpec>;
