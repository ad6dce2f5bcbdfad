/**
 * The Lab as a multi-language component: what the native provider's `construct` runs for a Python or YAML
 * program's `netns:index:Lab`. The children are the native resources, one Provider per host.
 */
import * as pulumi from "@pulumi/pulumi";
import { isRecord, isSecretWrapper } from "../../provider/validate";
import { Lab } from "../doors/native";
import type { LabArgs } from "./component";

type EngineOutput = pulumi.Output<unknown> & { isKnown: Promise<boolean>; isSecret: Promise<boolean>; promise(): Promise<unknown> };

const isSecret = async (value: unknown) =>
  pulumi.Output.isInstance(value) ? (value as EngineOutput).isSecret : isRecord(value) && isSecretWrapper(value);

/** The value of an output, which must be known: the Lab plans when the program runs. */
async function settled(path: string, value: unknown): Promise<unknown> {
  if (!pulumi.Output.isInstance(value)) return isRecord(value) && isSecretWrapper(value) ? value.value : value;
  const output = value as EngineOutput;
  if (!(await output.isKnown))
    throw new Error(`netns:index:Lab: ${path} is not known yet; a Lab's topology and hosts must be known when the program runs`);
  return output.promise();
}

/**
 * A topology value as plain data. A secret in it is refused: the plan is made from plain values and its
 * children would store it in plaintext (only the hosts' credentials may be secrets).
 */
async function plain(path: string, value: unknown): Promise<unknown> {
  if (await isSecret(value)) throw new Error(`netns:index:Lab: ${path} is a secret; only the hosts' credentials may be`);
  const settledValue = await settled(path, value);
  if (Array.isArray(settledValue)) return Promise.all(settledValue.map((item, i) => plain(`${path}[${i}]`, item)));
  if (!isRecord(settledValue)) return settledValue;
  return Object.fromEntries(
    await Promise.all(Object.entries(settledValue).map(async ([key, field]) => [key, await plain(`${path}.${key}`, field)])),
  );
}

/**
 * Each host's connection: `host` plain (the plan needs it), the other fields as they came, secrets and
 * values still to come included (each host's Provider marks its credentials secret again).
 */
async function hostsOf(value: unknown): Promise<LabArgs["hosts"]> {
  const hosts = await settled("hosts", value);
  if (!isRecord(hosts)) return hosts as LabArgs["hosts"];
  const entries = Object.entries(hosts).map(async ([name, entry]) => {
    const fields = await settled(`hosts.${name}`, entry);
    if (!isRecord(fields)) return [name, fields];
    const settledFields = Object.fromEntries(
      Object.entries(fields).map(([key, field]) => [key, isRecord(field) && isSecretWrapper(field) ? pulumi.secret(field.value) : field]),
    );
    return [name, { ...settledFields, host: await settled(`hosts.${name}.host`, fields.host) }];
  });
  return Object.fromEntries(await Promise.all(entries));
}

export async function constructLab(name: string, inputs: pulumi.Inputs, options: pulumi.ComponentResourceOptions) {
  const { hosts, ...topology } = inputs;
  const args = {
    ...Object.fromEntries(await Promise.all(Object.entries(topology).map(async ([key, value]) => [key, await plain(key, value)]))),
    hosts: await hostsOf(hosts),
  };
  const lab = new Lab(name, args as LabArgs, options);
  return {
    urn: lab.urn,
    state: {
      addresses: lab.addresses,
      vnis: lab.vnis,
      allocations: lab.allocations,
      topologyDot: lab.topologyDot,
      topologyMermaid: lab.topologyMermaid,
    },
  };
}
