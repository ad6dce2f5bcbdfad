/**
 * `pulumi-netns sweep`: the objects on the hosts that carry a stack's owner tag and are not in its state
 * (after `pulumi stack rm --force`, or a create that was interrupted and then left the program). Lists
 * them; removes them with --yes. Hosts come from the stack's state, and from --host for a stack whose
 * state is gone.
 */
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { readFileSync } from "node:fs";
import { Connection, connection as connectionSchema, targetIdentity, targetLabel } from "../provider/connection";
import { configInputs } from "../provider/native/provider";
import { findOrphans, removeOrphans, StateResource, stateResource } from "../provider/sweep";
import { closeAllHosts, hostFor } from "../provider/ssh/pool";
import { UsageError } from "./usage";

export const SWEEP_HELP = `pulumi-netns sweep [--stack NAME] [--cwd DIR] [--host [USER@]HOST[:PORT]]... [options] [--yes]

Lists the objects on the hosts that carry the stack's owner tag but are not in its state, such as
after \`pulumi stack rm --force\` or an interrupted \`up\` whose resource then left the program.
With --yes, removes them, each as its resource's delete would (a shared namespace or bridge is only
released by this stack; it goes when no other holder is left).

  --stack NAME         the stack (default: the selected one); its project is the one in --cwd
  --cwd DIR            the Pulumi project directory (default: the current one)
  --host TARGET        a host to look on, besides those in the stack's state (repeatable);
                       needed when the state is gone
  --identity FILE      private key for --host (default: the SSH agent in SSH_AUTH_SOCK)
  --host-key KEY       the host key of --host, as a public key line or SHA256:… fingerprint
  --known-hosts FILE   known_hosts for --host (default ~/.ssh/known_hosts)
  --sudo               run commands on --host through sudo -n
  --yes                remove what is found
`;

interface SweepOptions {
  stack?: string;
  cwd: string;
  hosts: string[];
  identity?: string;
  hostKey?: string;
  knownHosts?: string;
  sudo: boolean;
  yes: boolean;
}

export function parseSweepArgs(args: string[]): SweepOptions {
  const options: SweepOptions = { cwd: process.cwd(), hosts: [], sudo: false, yes: false };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => {
      const next = args[++i];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`${flag} needs a value`);
      return next;
    };
    if (flag === "--stack") options.stack = value();
    else if (flag === "--cwd") options.cwd = value();
    else if (flag === "--host") options.hosts.push(value());
    else if (flag === "--identity") options.identity = value();
    else if (flag === "--host-key") options.hostKey = value();
    else if (flag === "--known-hosts") options.knownHosts = value();
    else if (flag === "--sudo") options.sudo = true;
    else if (flag === "--yes") options.yes = true;
    else throw new UsageError(`unknown option ${flag}`);
  }
  if (options.hostKey !== undefined && options.hosts.length !== 1) throw new UsageError("--host-key goes with exactly one --host; use --known-hosts for several");
  return options;
}

/** `[USER@]HOST[:PORT]`, an IPv6 address in brackets. */
export function parseTarget(target: string): { user?: string; host: string; port?: number } {
  const match = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@[\]]+)(?::(\d+))?$/.exec(target);
  if (!match) throw new UsageError(`--host ${target}: expected [USER@]HOST[:PORT]`);
  const [, user, host, port] = match;
  return { user, host: host.replace(/^\[|\]$/g, ""), ...(port ? { port: Number(port) } : {}) };
}

/** A resource of a kind: `pulumi-nodejs:dynamic/netns:Veth` (dynamic) or `netns:index:Veth` (native). */
const KIND_TYPE = /(?:^|[/:])netns:(?:index:)?(\w+)$/;
const NATIVE_PROVIDER = "pulumi:providers:netns";

/** `stack export --show-secrets` gives a secret as its signature key and its value as JSON text. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
function revealed(value: unknown): unknown {
  const secret = value as { [SECRET_SIG]?: string; plaintext?: string } | undefined;
  return secret?.[SECRET_SIG] !== undefined && typeof secret.plaintext === "string" ? JSON.parse(secret.plaintext) : value;
}

interface StackState {
  resources: StateResource[];
  connections: Connection[];
}

/** The stack's resources and the hosts they are on; none for a stack whose state is gone. */
async function readState(workspace: LocalWorkspace, stack: string): Promise<StackState | undefined> {
  let deployment: { deployment?: { resources?: { type: string; id?: string; outputs?: Record<string, unknown> }[] } };
  try {
    deployment = await workspace.exportStack(stack);
  } catch (err) {
    if (/no stack named|stack .* not found/i.test(String(err))) return undefined;
    throw err;
  }
  const state: StackState = { resources: [], connections: [] };
  for (const resource of deployment.deployment?.resources ?? []) {
    // A native stack names its hosts once, in its providers (a default one may have none).
    if (resource.type === NATIVE_PROVIDER) {
      const fields = Object.fromEntries(Object.entries(resource.outputs ?? {}).map(([key, value]) => [key, revealed(value)]));
      const parsed = connectionSchema.safeParse(configInputs(fields));
      if (parsed.success) state.connections.push(parsed.data);
      continue;
    }
    const kind = KIND_TYPE.exec(resource.type)?.[1];
    if (!kind || !resource.id || kind === "Lab") continue;
    state.resources.push(stateResource(kind, resource.id, resource.outputs ?? {}));
    const parsed = connectionSchema.safeParse(revealed(resource.outputs?.connection));
    if (parsed.success) state.connections.push(parsed.data);
  }
  return state;
}

function givenHosts(options: SweepOptions): Connection[] {
  const privateKey = options.identity === undefined ? undefined : readFileSync(options.identity, "utf8");
  return options.hosts.map((target) => {
    const checked = connectionSchema.safeParse({
      ...parseTarget(target),
      ...(privateKey ? { privateKey } : { agent: process.env.SSH_AUTH_SOCK }),
      hostKey: options.hostKey,
      knownHostsFile: options.knownHosts,
      sudo: options.sudo,
    });
    if (!checked.success) throw new UsageError(`--host ${target}: ${checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`);
    return checked.data;
  });
}

/** Prints what it finds (and removes, with --yes); the exit code: 0, or 1 when something could not be removed. */
export async function sweep(options: SweepOptions, print: (line: string) => void): Promise<number> {
  const workspace = await LocalWorkspace.create({ workDir: options.cwd });
  const project = (await workspace.projectSettings()).name;
  const stack = options.stack ?? (await workspace.stack())?.name;
  if (!stack) throw new UsageError("no stack selected: pass --stack NAME");
  const state = await readState(workspace, stack);
  const hosts = new Map<string, Connection>();
  for (const connection of [...(state?.connections ?? []), ...givenHosts(options)]) hosts.set(targetIdentity(connection), connection);
  if (hosts.size === 0) throw new UsageError(`stack ${stack} has ${state ? "no pulumi-netns resources" : "no state"}: name the hosts to look on with --host`);
  const owner = `${project}/${stack}`;
  print(state ? `stack ${owner}: ${state.resources.length} resources in its state` : `stack ${owner}: no state (removed?); everything tagged with it is left over`);
  let failed = 0;
  try {
    for (const connection of hosts.values()) {
      const host = hostFor(connection);
      const orphans = await findOrphans(host, owner, state?.resources ?? []);
      print(`${targetLabel(connection)}: ${orphans.length === 0 ? "nothing left over" : `${orphans.length} left over`}`);
      const results = options.yes ? await removeOrphans(host, orphans) : orphans.map((orphan) => ({ orphan, error: undefined }));
      for (const { orphan, error } of results) {
        const outcome = !options.yes ? "" : error ? `  NOT REMOVED: ${error}` : "  removed";
        print(`  ${orphan.kind.name.padEnd(12)} ${orphan.what}${outcome}`);
        if (error) failed++;
      }
      if (!options.yes && orphans.length > 0) print("  (run again with --yes to remove them)");
    }
  } finally {
    closeAllHosts();
  }
  return failed > 0 ? 1 : 0;
}
