import { shellLine } from "./shell";

/**
 * A command as its words. Named apart from other string lists (the never-set field only marks it), so
 * that the prerequisites guard (test/harness/commandsUsed.ts) finds every command the code runs.
 */
export type Argv = readonly string[] & { readonly argvOfACommand?: never };

/** What resource kinds see of a target host: run one argv, get one fixed result shape. */

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
   * many objects of one listing) may get the earlier answer, unless anything but reads ran on the host since.
   */
  listing?: boolean;
  /**
   * The command cannot change the host (it must pass `isReadCommand`): it does not end the listings'
   * sharing, as any other command does, and its answer is not kept.
   */
  readOnly?: boolean;
}

export interface Host {
  /** Printable name of the target (user@host:port), never credentials. */
  readonly label: string;
  /** How long one command may take before the client gives up on it; host-side lock waits stay inside it. */
  readonly commandTimeoutSeconds?: number;
  run(argv: Argv, options?: RunOptions): Promise<CommandResult>;
}

/**
 * Several commands as one remote step, each run only when the one before succeeded: once it reaches the
 * host it runs to its end even if this provider dies meanwhile (sshd does not stop a command without a
 * terminal when its client goes). A make and the tag saying who made it go together this way.
 */
export function inOneStep(...argvs: Argv[]): Argv {
  return argvs.length === 1 ? argvs[0] : ["sh", "-c", argvs.map(shellLine).join(" && ")];
}

/** `ip` and `bridge` take the namespace as a flag; anything else is run through `ip netns exec`. */
export function inNamespace(namespace: string | undefined, argv: Argv): Argv {
  if (!namespace) return argv;
  if (argv[0] === "ip" || argv[0] === "bridge") return [argv[0], "-n", namespace, ...argv.slice(1)];
  return ["ip", "netns", "exec", namespace, ...argv];
}

/** Scripts declared by `readOnlyScript`: run as `sh -c SCRIPT …`, they count as reads. */
const READ_SCRIPTS = new Set<string>();

/**
 * Declares a fixed script that changes nothing a listing shows (a probe's packets, a look at a process's
 * records), so that a refresh running it keeps sharing its listings instead of listing every namespace again.
 */
export function readOnlyScript(script: string): string {
  READ_SCRIPTS.add(script);
  return script;
}

const IP_FLAGS = new Set(["-j", "-d", "-4", "-6"]);
const IP_OBJECTS = new Set(["link", "addr", "route", "netns", "netconf"]);
/** What `bridge` and `tc` may show (after an optional -j). */
const SHOW_OBJECT = { bridge: "fdb show", tc: "qdisc show" };
const SYSCTL_FLAGS = new Set(["-n", "-e"]);
/** A sysctl key, with an interface name's characters (no `=`: `sysctl KEY=VALUE` writes even without -w). */
const SYSCTL_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.@/-]*$/;

/** `sysctl [-n -e] [-r PATTERN] KEY…`: each -r takes exactly one pattern, which is no option (-p, --system write). */
function isSysctlRead(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    if (SYSCTL_FLAGS.has(args[i])) continue;
    if (args[i] === "-r") {
      i++;
      if (args[i] === undefined || args[i].startsWith("-")) return false;
    } else if (!SYSCTL_KEY.test(args[i])) return false;
  }
  return true;
}

/**
 * Whether an argv can only read: `ip [-j -d -4 -6] link|addr|route|netns show|list …`, `tc [-j] qdisc
 * show …`, `bridge [-j] fdb show …`, `sysctl [-n -e] [-r PATTERN] KEY…`, `cat`, `stat`, each maybe inside
 * `ip -n NS`, `bridge -n NS` or `ip netns exec NS`; `sh -c SCRIPT` of a `readOnlyScript`. A fixed list,
 * so that a command flagged read-only by mistake is refused, never run as one (which would let a listing
 * from before it answer after it).
 */
export function isReadCommand(argv: Argv): boolean {
  if (argv[0] === "ip" && argv[1] === "netns" && argv[2] === "exec") return isReadCommand(argv.slice(4));
  if ((argv[0] === "ip" || argv[0] === "bridge") && argv[1] === "-n") return isReadCommand([argv[0], ...argv.slice(3)]);
  const [program, ...args] = argv;
  switch (program) {
    case "cat":
    case "stat":
      return true;
    case "ip": {
      const object = args.findIndex((arg) => !IP_FLAGS.has(arg));
      return IP_OBJECTS.has(args[object]) && ["show", "list"].includes(args[object + 1]);
    }
    case "bridge":
    case "tc":
      return (args[0] === "-j" ? args.slice(1) : args).slice(0, 2).join(" ") === SHOW_OBJECT[program];
    case "sysctl":
      return isSysctlRead(args);
    case "sh":
      return args[0] === "-c" && READ_SCRIPTS.has(args[1]);
    default:
      return false;
  }
}

/** Every Host runs this first: a command flagged read-only that is not on the list never runs. */
export function refuseFalseRead(argv: Argv, options: RunOptions | undefined): void {
  if (options?.readOnly && !isReadCommand(argv)) throw new Error(`not a read-only command, refused: ${shellLine(argv)}`);
}

/** Closes each namespace's part of an `inEveryNamespace` listing: a part without it did not finish. */
const LISTED = "pulumi-netns-listed";

/**
 * A listing of every namespace is split into this many commands, run side by side on the pool's shells
 * (two by default): each `ip` run costs a process start on the host, and a host lists hundreds.
 */
export const LISTING_PARTS = 2;

/** Named namespaces are dealt to a listing's parts by their name's last character, when it is one of these. */
const DEALT = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * The last characters a part leaves to the others, as a `case` pattern: each dealt character belongs to one
 * part, any other to part 0. So each namespace is listed exactly once, however the parts' runs interleave
 * with namespaces coming and going, and no process is started to decide.
 */
function leftToOtherParts(part: number, parts: number): string {
  const dealtTo = (p: number) => [...DEALT].filter((_, i) => i % parts === p).join("");
  if (part > 0) return `[!${dealtTo(part)}]`;
  const others = [...DEALT].filter((_, i) => i % parts !== 0).join("");
  return others && `[${others}]`;
}

/**
 * The loop of an `inEveryNamespace` command; the part, the pattern it skips and the argv come as its
 * arguments. The globs cover names starting with a dot too (a plain `*` skips them; `ip -all` did not). A
 * part whose namespace failed still exits 0: `byNamespace` names the namespace whose marker is missing.
 */
function listingScript(inEach: string): string {
  return [
    "part=$1 theirs=$2 program=$3; shift 3",
    `if [ "$part" = 0 ]; then printf 'netns: \\n'; "$program" "$@" && echo ${LISTED}; fi`,
    "for path in /var/run/netns/* /var/run/netns/.[!.]* /var/run/netns/..?*; do",
    "  ns=${path##*/}",
    '  [ -e "$path" ] || continue',
    '  case ${ns#"${ns%?}"} in $theirs) continue ;; esac',
    `  printf '\\nnetns: %s\\n' "$ns"; ${inEach} && echo ${LISTED}`,
    "done",
    "exit 0",
  ].join("\n");
}

/** Built once (every read of a refresh asks for its listing): the argv inside a namespace, as `inNamespace` builds it. */
const LISTING_SCRIPTS = {
  flag: listingScript('"$program" -n "$ns" "$@"'),
  exec: listingScript('ip netns exec "$ns" "$program" "$@"'),
};

/**
 * Part `part` of `parts` of one listing: the host's own namespace (in part 0) and every named one, each
 * after a "netns: NAME" line ("" is the host's own). Split its output with `byNamespace`.
 */
export function inEveryNamespace(argv: Argv, part = 0, parts = 1): Argv {
  const script = argv[0] === "ip" || argv[0] === "bridge" ? LISTING_SCRIPTS.flag : LISTING_SCRIPTS.exec;
  return ["sh", "-c", script, "sh", String(part), leftToOtherParts(part, parts), ...argv];
}

/**
 * A listing by namespace ("" is the host's own). A namespace whose part of the listing failed (a stale
 * or foreign entry in /var/run/netns, say) is not in it, and asking for it throws naming it: its objects
 * are unknown, not gone. Every other namespace reads as usual.
 */
export class NamespaceListing<T> extends Map<string, T> {
  readonly failed = new Map<string, string>();

  get(namespace: string): T | undefined {
    const failure = this.failed.get(namespace);
    if (failure !== undefined) throw new Error(failure);
    return super.get(namespace);
  }
}

/** The output of an `inEveryNamespace` listing per namespace; a namespace missing from every part does not exist. */
export function byNamespace(result: CommandResult): NamespaceListing<string> {
  const parts = new NamespaceListing<string>();
  const sections = result.stdout.split(/^netns: (.*)\n/m).slice(1);
  for (let i = 0; i < sections.length; i += 2) {
    const [namespace, text] = [sections[i], sections[i + 1].trimEnd()];
    if (text.endsWith(LISTED)) parts.set(namespace, text.slice(0, -LISTED.length));
    else
      parts.failed.set(
        namespace,
        `listing failed in ${namespace || "the host's own namespace"}: ${result.command}: ${result.stderr.trim()}`,
      );
  }
  return parts;
}

/**
 * One listing of every namespace, its parts run side by side and each namespace's text parsed once
 * (the parts a refresh's reads share come back as the same results, so their parse is kept).
 */
export async function listEveryNamespace<T>(host: Host, argv: Argv, parse: (text: string) => T): Promise<NamespaceListing<T>> {
  const results = await Promise.all(
    Array.from({ length: LISTING_PARTS }, (_, part) => host.run(inEveryNamespace(argv, part, LISTING_PARTS), { listing: true })),
  );
  const kept = parsedListings.get(results[0]);
  if (kept && kept.results.every((result, i) => result === results[i])) return kept.parsed as NamespaceListing<T>;
  const parsed = new NamespaceListing<T>();
  for (const listing of results.map(byNamespace)) {
    for (const [namespace, text] of listing) parsed.set(namespace, parse(text));
    for (const [namespace, failure] of listing.failed) parsed.failed.set(namespace, failure);
  }
  parsedListings.set(results[0], { results, parsed });
  return parsed;
}

const parsedListings = new WeakMap<CommandResult, { results: CommandResult[]; parsed: NamespaceListing<unknown> }>();
