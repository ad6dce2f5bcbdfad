/**
 * The Lab as a multi-language component: what the native provider's `construct` runs for a Python or YAML
 * program's `netns:index:Lab`. The children are the native resources, one Provider per host.
 */
import * as pulumi from "@pulumi/pulumi";
import { isRecord, isSecretWrapper } from "../../provider/validate";
import { Lab } from "../native";
import type { LabArgs } from "./component";

/** Nested secrets (the provider server unwraps only the top level) as secret Outputs, so that they stay secret in the children's state. */
function withSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withSecrets);
  if (!isRecord(value)) return value;
  if (isSecretWrapper(value)) return pulumi.secret(withSecrets(value.value));
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, withSecrets(field)]));
}

/**
 * An input's value: the Lab plans when the program runs, so its topology must be known then. An input
 * that holds a secret arrives secret as a whole (`hosts`, for its keys); the Lab's Providers mark the
 * credentials secret again, field by field.
 */
async function known(key: string, value: unknown): Promise<unknown> {
  if (!pulumi.Output.isInstance(value)) return withSecrets(value);
  const output = value as pulumi.Output<unknown> & { isKnown: Promise<boolean>; promise(): Promise<unknown> };
  if (!(await output.isKnown)) throw new Error(`netns:index:Lab: "${key}" is not known yet; a Lab's topology and hosts must be known when the program runs`);
  return withSecrets(await output.promise());
}

export async function constructLab(name: string, inputs: pulumi.Inputs, options: pulumi.ComponentResourceOptions) {
  const args = Object.fromEntries(await Promise.all(Object.entries(inputs).map(async ([key, value]) => [key, await known(key, value)])));
  const lab = new Lab(name, args as LabArgs, options);
  return {
    urn: lab.urn,
    state: { addresses: lab.addresses, vnis: lab.vnis, allocations: lab.allocations, topologyDot: lab.topologyDot, topologyMermaid: lab.topologyMermaid },
  };
}
