import { shellLine, shellQuote } from "./shell";

/** What resource kinds see of a target host: run one argv, get one fixed result shape. */
export type Argv = readonly string[];

export interface CommandResult {
  command: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  /** Resolve with the result instead of throwing when the exit code is not 0. */
  allowFailure?: boolean;
  /**
   * A listing: the command changes nothing, so the same listing asked for again shortly (a refresh reads
   * many objects of one listing) may get the earlier answer, unless anything else ran on the host since.
   */
  listing?: boolean;
}

export interface Host {
  /** Printable name of the target (user@host:port), never credentials. */
  readonly label: string;
  run(argv: Argv, options?: RunOptions): Promise<CommandResult>;
}

/** `ip` and `bridge` take the namespace as a flag; anything else is run through `ip netns exec`. */
export function inNamespace(namespace: string | undefined, argv: Argv): Argv {
  if (!namespace) return argv;
  if (argv[0] === "ip" || argv[0] === "bridge") return [argv[0], "-n", namespace, ...argv.slice(1)];
  return ["ip", "netns", "exec", namespace, ...argv];
}

/** Closes each namespace's part of an `inEveryNamespace` listing: a part without it did not finish. */
const LISTED = "pulumi-netns-listed";

/**
 * One command that runs a listing in the host's own namespace and then in every named one (`ip -all
 * netns exec` puts a "netns: NAME" line before each). Split its output with `byNamespace`.
 */
export function inEveryNamespace(argv: Argv): Argv {
  const each = `${shellLine(argv)} && echo ${LISTED}`;
  return ["sh", "-c", `${each}; ip -all netns exec sh -c ${shellQuote(each)}`];
}

/**
 * The output of an `inEveryNamespace` listing per namespace ("" is the host's own); a namespace missing
 * here does not exist. Throws naming the namespaces whose listing failed: their objects are unknown, not gone.
 */
export function byNamespace(result: CommandResult): Map<string, string> {
  const parts = new Map<string, string>();
  const failed: string[] = [];
  const sections = `netns: \n${result.stdout}`.split(/^netns: (.*)\n/m).slice(1);
  for (let i = 0; i < sections.length; i += 2) {
    const [namespace, text] = [sections[i], sections[i + 1].trimEnd()];
    if (text.endsWith(LISTED)) parts.set(namespace, text.slice(0, -LISTED.length));
    else failed.push(namespace || "the host's own namespace");
  }
  if (failed.length > 0) throw new Error(`listing failed in ${failed.join(", ")}: ${result.command}: ${result.stderr.trim()}`);
  return parts;
}
