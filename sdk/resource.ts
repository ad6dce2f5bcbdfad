/**
 * What both doors' resource classes are made of: one class per kind of the kinds list (provider/kinds),
 * the argument and output types a program sees, and the outputs computed on the host that a program reads.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";
import type { connection } from "../provider/connection";
import type { Kind, KindInput, Props } from "../provider/kind";
import { kinds } from "../provider/kinds";

/** A value or an output of another resource, at every level of nesting. */
export type Inputs<T> = [T] extends [string | number | boolean | undefined]
  ? pulumi.Input<T>
  : pulumi.Input<{ [K in keyof T]: Inputs<T[K]> }>;

export type ArgsOf<K> = K extends Kind<infer Shape> ? { [P in keyof KindInput<Shape>]: Inputs<KindInput<Shape>[P]> } : never;

/** How to reach a host: `host`, and a credential (privateKey, password or agent). */
export type ConnectionArgs = Inputs<z.input<typeof connection>>;

/** Every output a resource of the kind reports: its properties, read back, and what the provider computes. */
export const outputKeys = (kind: Kind<any>) => [...Object.keys(kind.shape), ...Object.keys(kind.outputs ?? {})];

/** The outputs of a kind: its properties as read back from the host, and the (secret) connection. */
export type OutputsOf<K> =
  K extends Kind<infer Shape>
    ? { readonly [P in keyof z.output<z.ZodObject<Shape>>]-?: pulumi.Output<z.output<z.ZodObject<Shape>>[P]> } & {
        readonly connection: pulumi.Output<Record<string, unknown>>;
      }
    : never;

/** A kind's name, as its class is named: "Namespace", "Veth", … */
export type KindName = (typeof kinds)[number]["name"];
/** The kind of that name. */
export type KindNamed<N extends KindName> = Extract<(typeof kinds)[number], { name: N }>;

interface RuleOutputs {
  /** The rules present on the host, as iptables arguments. */
  readonly rules: pulumi.Output<string[]>;
}

/** Outputs computed on the host that the classes declare besides the kind's properties, by kind. */
interface ComputedOutputs {
  Masquerade: RuleOutputs;
  PortForward: RuleOutputs;
  Sysctl: {
    /** The value before this resource set it; restored on destroy. */
    readonly previous: pulumi.Output<string>;
  };
}
export type ComputedOutputsOf<N extends KindName> = N extends keyof ComputedOutputs ? ComputedOutputs[N] : unknown;

/**
 * A class as a door makes it: `Base`'s static side (isInstance), and a constructor taking a name, `Args`
 * and resource options that makes an `Instance`.
 */
export type KindClass<Base extends abstract new (...args: any[]) => pulumi.CustomResource, Args, Instance> = Omit<Base, "prototype"> & {
  new (name: string, args: Args, opts?: pulumi.CustomResourceOptions): Instance;
  prototype: Instance;
};

/** What a class's constructor passes to its base class, from the kind and the constructor's own arguments. */
export type SuperArgs = (kind: Kind, name: string, args: Props, opts?: pulumi.CustomResourceOptions) => unknown[];

/**
 * One class per kind of the kinds list, keyed and named like the kind; each extends `base`, passing it
 * `superArgs`. Directly `base`, with no class of ours between: Pulumi stores each resource's constructor
 * call stack in state (every frame its file, line and column), and takes its first frame below the
 * engine's classes as where the resource was declared. A door casts the result to its own types (KindClass).
 */
export function kindClasses(base: abstract new (...args: any[]) => pulumi.CustomResource, superArgs: SuperArgs): Record<KindName, unknown> {
  const Base = base as new (...args: any[]) => pulumi.CustomResource;
  const classOf = (kind: Kind) => {
    const made = class extends Base {
      constructor(name: string, args: Props, opts?: pulumi.CustomResourceOptions) {
        super(...superArgs(kind, name, args, opts));
      }
    };
    return Object.defineProperty(made, "name", { value: kind.name });
  };
  return Object.fromEntries(kinds.map((kind) => [kind.name, classOf(kind as unknown as Kind)])) as Record<KindName, unknown>;
}
