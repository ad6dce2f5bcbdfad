/**
 * A stack as the command line reads it: through the Pulumi CLI (Automation API) in the project directory,
 * its state from `pulumi stack export --show-secrets`. Every pulumi-netns resource of either door, with its
 * inputs and outputs in plain values and the host it is on: a dynamic resource's own `connection`, a native
 * one's provider's.
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { Connection, connection as connectionSchema } from "../provider/connection";
import { configInputs } from "../provider/native/provider";
import { isRecord } from "../provider/validate";
import { OptionTable, onlyValue, ParsedArgs } from "./args";
import { UsageError } from "./usage";

export interface StackOptions {
  stack?: string;
  cwd: string;
}

export const STACK_OPTIONS: Required<Pick<OptionTable, "values">> = { values: { "--stack": "stack", "--cwd": "cwd" } };

export const STACK_HELP = `  --stack NAME         the stack (default: the selected one); its project is the one in --cwd
  --cwd DIR            the Pulumi project directory (default: the current one)`;

export function stackOptions(parsed: ParsedArgs): StackOptions {
  return { stack: onlyValue(parsed, "stack", "--stack"), cwd: onlyValue(parsed, "cwd", "--cwd") ?? process.cwd() };
}

export interface StackResource {
  urn: string;
  type: string;
  /** The pulumi-netns kind: "Veth", "LabNode", "Lab"… */
  kind: string;
  /** The name the program gave it (the URN's last part). */
  name: string;
  /** Unset for a component (a Lab). */
  id?: string;
  parent?: string;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  /** The outputs the state keeps secret (revealed above, for sweep's owner hashes): never printed. */
  secretOutputs: string[];
  /** The host it is on, for a resource on one. Carries credentials: never printed. */
  connection?: Connection;
}

export interface StackState {
  resources: StackResource[];
  /** Every host the state names, providers without resources included. */
  connections: Connection[];
}

export interface OpenedStack {
  /** PROJECT/STACK, as owner tags name it. */
  owner: string;
  name: string;
  /** Unset for a stack whose state is gone. */
  state?: StackState;
}

/** A resource of a kind: `pulumi-nodejs:dynamic/netns:Veth` (dynamic), `netns:index:Veth` (native), `netns:index:Lab`. */
const KIND_TYPE = /(?:^|[/:])netns:(?:index:)?(\w+)$/;
const NATIVE_PROVIDER = "pulumi:providers:netns";

/** `stack export --show-secrets` gives a secret as its signature key and its value as JSON text. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const isSecret = (value: unknown) => isRecord(value) && value[SECRET_SIG] !== undefined;
function revealed(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revealed);
  if (!isRecord(value)) return value;
  if (isSecret(value) && typeof value.plaintext === "string") return revealed(JSON.parse(value.plaintext));
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, revealed(field)]));
}

interface ExportedResource {
  urn: string;
  type: string;
  custom?: boolean;
  id?: string;
  parent?: string;
  provider?: string;
  inputs?: Record<string, unknown>;
  outputs?: Record<string, unknown>;
}

/** The resources of an exported deployment, each with the host it is on. */
export function stackState(exported: ExportedResource[]): StackState {
  const providers = new Map<string, Connection>();
  for (const resource of exported.filter((r) => r.type === NATIVE_PROVIDER)) {
    // A native stack names its hosts once, in its providers (a default one may have none).
    const parsed = connectionSchema.safeParse(configInputs(revealed(resource.outputs ?? {}) as Record<string, unknown>));
    if (parsed.success) providers.set(`${resource.urn}::${resource.id}`, parsed.data);
  }
  const resources: StackResource[] = [];
  const connections = [...providers.values()];
  for (const resource of exported) {
    const kind = KIND_TYPE.exec(resource.type)?.[1];
    if (!kind || resource.type === NATIVE_PROVIDER) continue;
    const outputs = revealed(resource.outputs ?? {}) as Record<string, unknown>;
    const own = connectionSchema.safeParse(outputs.connection);
    if (own.success) connections.push(own.data);
    const connection = own.success ? own.data : resource.provider ? providers.get(resource.provider) : undefined;
    resources.push({
      urn: resource.urn,
      type: resource.type,
      kind,
      name: resource.urn.split("::").pop()!,
      ...(resource.id ? { id: resource.id } : {}),
      ...(resource.parent ? { parent: resource.parent } : {}),
      inputs: revealed(resource.inputs ?? {}) as Record<string, unknown>,
      outputs,
      secretOutputs: Object.keys(resource.outputs ?? {}).filter((key) => isSecret(resource.outputs![key])),
      ...(connection ? { connection } : {}),
    });
  }
  return { resources, connections };
}

/** The stack named by the options, and its state; no state for a stack that was removed. */
export async function readStack(options: StackOptions): Promise<OpenedStack> {
  const workspace = await LocalWorkspace.create({ workDir: options.cwd }).catch((err) => {
    throw /ENOENT/.test(String(err)) ? new Error("the Pulumi CLI (pulumi) is not on PATH: pulumi-netns reads the stack through it") : err;
  });
  const project = (
    await workspace.projectSettings().catch(() => {
      throw new UsageError(`no Pulumi project in ${options.cwd} (no Pulumi.yaml): run this in the project's directory, or pass --cwd DIR`);
    })
  ).name;
  const name = options.stack ?? (await workspace.stack())?.name;
  if (!name) throw new UsageError("no stack selected: pass --stack NAME");
  const owner = `${project}/${name}`;
  let deployment: { deployment?: { resources?: ExportedResource[] } };
  try {
    deployment = await workspace.exportStack(name);
  } catch (err) {
    if (/no stack named|stack .* not found/i.test(String(err))) return { owner, name };
    throw err;
  }
  return { owner, name, state: stackState(deployment.deployment?.resources ?? []) };
}

/** The state of a stack that must have one. */
export async function readExistingStack(options: StackOptions): Promise<OpenedStack & { state: StackState }> {
  const opened = await readStack(options);
  if (!opened.state) throw new Error(`stack ${opened.owner} has no state: nothing to show (was it removed?)`);
  return opened as OpenedStack & { state: StackState };
}
