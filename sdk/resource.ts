import * as pulumi from "@pulumi/pulumi";
import { createHash } from "node:crypto";
import type { z } from "zod";
import type { connection } from "../provider/connection";
import type { Kind, KindInput } from "../provider/kind";
import { shim } from "./shim";

/** A value or an output of another resource, at every level of nesting. */
export type Inputs<T> = [T] extends [string | number | boolean | undefined]
  ? pulumi.Input<T>
  : pulumi.Input<{ [K in keyof T]: Inputs<T[K]> }>;

export type ArgsOf<K extends Kind<any>> = K extends Kind<infer Shape> ? { [P in keyof KindInput<Shape>]: Inputs<KindInput<Shape>[P]> } : never;

/** How to reach a host: `host`, and a credential (privateKey, password or agent). */
export type ConnectionArgs = Inputs<z.input<typeof connection>>;

/** Every output a resource of the kind reports: its properties, read back, and what the provider computes. */
export const outputKeys = (kind: Kind<any>) => [...Object.keys(kind.shape), ...Object.keys(kind.outputs ?? {})];

/** One shim per kind, so Pulumi serializes each kind's provider once, not once per resource. */
const shims = new Map<string, pulumi.dynamic.ResourceProvider>();
export function shimFor(kind: string): pulumi.dynamic.ResourceProvider {
  if (!shims.has(kind)) shims.set(kind, shim(kind));
  return shims.get(kind)!;
}

/**
 * What every pulumi-netns resource class passes to `pulumi.dynamic.Resource`. The connection (with its
 * credentials) is a secret input and a secret output, so state holds it only encrypted. A function, not a
 * base class: Pulumi stores each resource's constructor call stack in state, and takes its first frame
 * below the engine's classes as where the resource was declared.
 */
export function registration(
  kind: Kind<any>,
  name: string,
  args: { connection: unknown },
  opts?: pulumi.CustomResourceOptions,
): [pulumi.dynamic.ResourceProvider, string, pulumi.Inputs, pulumi.CustomResourceOptions, string, string] {
  const props = {
    ...Object.fromEntries(outputKeys(kind).map((key) => [key, undefined])),
    ...args,
    connection: pulumi.secret(args.connection as pulumi.Input<Record<string, unknown>>),
    owner: ownerOf(kind, name, opts),
  };
  const secretOutputs = [...(opts?.additionalSecretOutputs ?? []), "connection"];
  return [shimFor(kind.name), name, props, { ...opts, additionalSecretOutputs: secretOutputs }, "netns", kind.name];
}

/**
 * The resource's owner as objects on the host carry it (provider/owner.ts): a hash of what makes its URN
 * unique (stack, project, parent, type, name), and its project and stack. A dynamic provider's create is
 * not told the URN, so it comes as an input; a plain string, so no child waits on its parent's URN.
 */
function ownerOf(kind: Kind<any>, name: string, opts?: pulumi.CustomResourceOptions): string {
  const parent = opts?.parent as unknown as { __pulumiType?: string; __name?: string } | undefined;
  const identity = [pulumi.getStack(), pulumi.getProject(), parent?.__pulumiType, parent?.__name, `netns:${kind.name}`, name];
  const hash = createHash("sha256").update(JSON.stringify(identity)).digest("hex").slice(0, 16);
  return `${hash}@${pulumi.getProject()}/${pulumi.getStack()}`;
}

/** The outputs of a kind: its properties as read back from the host, and the (secret) connection. */
export type OutputsOf<K extends Kind<any>> = K extends Kind<infer Shape>
  ? { readonly [P in keyof z.output<z.ZodObject<Shape>>]-?: pulumi.Output<z.output<z.ZodObject<Shape>>[P]> } & {
      readonly connection: pulumi.Output<Record<string, unknown>>;
    }
  : never;
