/**
 * `pulumi-netns sweep`: the objects on the hosts that carry a stack's owner tag and are not in its state
 * (after `pulumi stack rm --force`, or a create that was interrupted and then left the program). Lists
 * them; removes them with --yes. Hosts come from the stack's state, and from --host for a stack whose
 * state is gone.
 */
import { readFileSync } from "node:fs";
import { Connection, connection as connectionSchema, targetIdentity, targetLabel } from "../provider/connection";
import { findOrphans, removeOrphans, stateResource } from "../provider/sweep";
import { closeAllHosts, hostFor } from "../provider/ssh/pool";
import { noMoreOperands, onlyValue, parseArgs } from "./args";
import { readStack, STACK_HELP, STACK_OPTIONS, stackOptions, StackOptions } from "./stack";
import { UsageError } from "./usage";

export const SWEEP_HELP = `pulumi-netns sweep [--stack NAME] [--cwd DIR] [--host [USER@]HOST[:PORT]]... [options] [--yes]

Lists the objects on the hosts that carry the stack's owner tag but are not in its state, such as
after \`pulumi stack rm --force\` or an interrupted \`up\` whose resource then left the program.
With --yes, removes them, each as its resource's delete would (a shared namespace or bridge is only
released by this stack; it goes when no other holder is left).

${STACK_HELP}
  --host TARGET        a host to look on, besides those in the stack's state (repeatable);
                       needed when the state is gone
  --identity FILE      private key for --host (default: the SSH agent in SSH_AUTH_SOCK)
  --host-key KEY       the host key of --host, as a public key line or SHA256:… fingerprint
  --known-hosts FILE   known_hosts for --host (default ~/.ssh/known_hosts)
  --sudo               run commands on --host through sudo -n
  --yes                remove what is found
`;

interface SweepOptions extends StackOptions {
  hosts: string[];
  identity?: string;
  hostKey?: string;
  knownHosts?: string;
  sudo: boolean;
  yes: boolean;
}

const SWEEP_OPTIONS = {
  values: { ...STACK_OPTIONS.values, "--host": "host", "--identity": "identity", "--host-key": "hostKey", "--known-hosts": "knownHosts" },
  switches: { "--sudo": "sudo", "--yes": "yes" },
};

export function parseSweepArgs(args: string[]): SweepOptions {
  const parsed = parseArgs(args, SWEEP_OPTIONS);
  noMoreOperands(parsed, 0);
  const options: SweepOptions = {
    ...stackOptions(parsed),
    hosts: parsed.values.get("host") ?? [],
    identity: onlyValue(parsed, "identity", "--identity"),
    hostKey: onlyValue(parsed, "hostKey", "--host-key"),
    knownHosts: onlyValue(parsed, "knownHosts", "--known-hosts"),
    sudo: parsed.switches.has("sudo"),
    yes: parsed.switches.has("yes"),
  };
  if (options.hostKey !== undefined && options.hosts.length !== 1) {
    throw new UsageError("--host-key goes with exactly one --host; use --known-hosts for several");
  }
  return options;
}

/** `[USER@]HOST[:PORT]`, an IPv6 address in brackets. */
export function parseTarget(target: string): { user?: string; host: string; port?: number } {
  const match = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:@[\]]+)(?::(\d+))?$/.exec(target);
  if (!match) throw new UsageError(`--host ${target}: expected [USER@]HOST[:PORT]`);
  const [, user, host, port] = match;
  return { user, host: host.replace(/^\[|\]$/g, ""), ...(port ? { port: Number(port) } : {}) };
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
    if (!checked.success)
      throw new UsageError(
        `--host ${target}: ${checked.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
      );
    return checked.data;
  });
}

/** Prints what it finds (and removes, with --yes); the exit code: 0, or 1 when something could not be removed. */
export async function sweep(options: SweepOptions, print: (line: string) => void): Promise<number> {
  const { owner, name, state } = await readStack(options);
  const hosts = new Map<string, Connection>();
  for (const connection of [...(state?.connections ?? []), ...givenHosts(options)]) hosts.set(targetIdentity(connection), connection);
  if (hosts.size === 0) {
    throw new UsageError(`stack ${name} has ${state ? "no pulumi-netns resources" : "no state"}: name the hosts to look on with --host`);
  }
  // The custom resources: a Lab component has nothing on a host of its own.
  const resources = (state?.resources ?? []).flatMap((r) => (r.id ? [stateResource(r.kind, r.id, r.outputs)] : []));
  const gone = `stack ${owner}: no state (removed?); everything tagged with it is left over`;
  print(state ? `stack ${owner}: ${resources.length} resources in its state` : gone);
  let failed = 0;
  try {
    for (const connection of hosts.values()) {
      const host = hostFor(connection);
      const orphans = await findOrphans(host, owner, resources);
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
