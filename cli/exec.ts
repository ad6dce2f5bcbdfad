/**
 * `pulumi-netns exec NODE -- COMMAND…`: the command in the node's namespace on its host, over the stack's
 * own SSH settings for that host, with this process's input and the command's output and exit code. No
 * command: a shell there, on a terminal when this one is.
 */
import { inNamespace } from "../provider/host";
import { parseArgs } from "./args";
import { attachTo, failedAt, nodeTarget, note, noting } from "./node";
import { STACK_HELP, STACK_OPTIONS, stackOptions, StackOptions } from "./stack";
import { UsageError } from "./usage";

export const EXEC_HELP = `pulumi-netns exec NODE [--stack NAME] [--cwd DIR] [--tty] [-- COMMAND [ARG...]]

Runs COMMAND in NODE's namespace on its host, over the SSH settings the stack uses for that host (its
host key check, jump host and sudo), with this command's input, and exits with COMMAND's exit code.
Without COMMAND: a shell there (the login user's), on a terminal when this command runs on one, else
reading its commands from the input. NODE is a Lab's node or a namespace of plain resources, as
\`pulumi-netns inspect\` lists them.

${STACK_HELP}
  --tty, -t            run COMMAND on a terminal (for full-screen programs such as top)

Ctrl-C sends COMMAND (and what it started) SIGINT; a second Ctrl-C, SIGTERM or SIGHUP ends it
(TERM, then KILL) and the session.
Exit code: COMMAND's (128 + N when signal N ended it), or 255 when it could not be run (an unknown
node, a host that cannot be reached), as ssh's.
`;

export interface ExecOptions extends StackOptions {
  node: string;
  /** Unset: a shell. */
  command?: string[];
  tty: boolean;
}

export function parseExecArgs(args: string[]): ExecOptions {
  const parsed = parseArgs(args, { values: STACK_OPTIONS.values, switches: { "--tty": "tty", "-t": "tty" } });
  const [node, ...extra] = parsed.operands;
  if (node === undefined) throw new UsageError("name the node: pulumi-netns exec NODE [-- COMMAND...]");
  if (extra.length > 0) throw new UsageError(`the command goes after --: pulumi-netns exec ${node} -- ${extra.join(" ")}`);
  if (parsed.rest?.length === 0) throw new UsageError("nothing after --: give a command, or leave -- out for a shell");
  return { ...stackOptions(parsed), node, ...(parsed.rest ? { command: parsed.rest } : {}), tty: parsed.switches.has("tty") };
}

/** How long a stopped command has between TERM and KILL. */
const STOP_GRACE_MS = 2_000;

/** The login user's shell (sshd and sudo set SHELL); interactive when its input is a terminal. */
const USER_SHELL = 'exec "${SHELL:-/bin/sh}"';

export async function exec(options: ExecOptions): Promise<number> {
  const target = await nodeTarget(options, options.node);
  const { stdin, stdout, stderr } = process;
  const onTerminal = options.tty || (options.command === undefined && stdin.isTTY);
  const terminal = onTerminal ? { term: process.env.TERM ?? "xterm", rows: stdout.rows ?? 24, cols: stdout.columns ?? 80 } : undefined;
  const argv = inNamespace(target.node.namespace, options.command ?? ["sh", "-c", USER_SHELL]);
  const attached = await attachTo(target, argv, { stdin, stdout, stderr, terminal });
  if (options.command === undefined && onTerminal) note(`a shell in ${target.where}; exit leaves it`);
  // On a terminal, keys (Ctrl-C too) go to the command as they are typed.
  const raw = onTerminal && stdin.isTTY;
  if (raw) stdin.setRawMode(true);
  const resize = () => attached.resize(stdout.rows, stdout.columns);
  stdout.on("resize", resize);
  let interrupts = 0;
  // The session ends with what it ran: a command without a terminal outlives its session on the host.
  const stop = () => {
    attached.stop(STOP_GRACE_MS).catch(() => attached.close());
  };
  const interrupt = () => {
    if (++interrupts > 1) return stop();
    attached.signal("INT").catch(() => undefined);
    const still = `sent SIGINT to the command in ${target.where}; Ctrl-C again ends it (TERM, then KILL) and the session`;
    noting(attached.exitCode, 1_000, still).catch(() => undefined);
  };
  process.on("SIGINT", interrupt);
  process.on("SIGTERM", stop);
  process.on("SIGHUP", stop);
  // A reader that went away (`| head`) ends the command too, as a pipe's SIGPIPE would.
  stdout.on("error", stop);
  try {
    return await attached.exitCode;
  } catch (err) {
    throw failedAt(target, err);
  } finally {
    process.off("SIGINT", interrupt);
    process.off("SIGTERM", stop);
    process.off("SIGHUP", stop);
    stdout.off("error", stop);
    stdout.off("resize", resize);
    if (raw) stdin.setRawMode(false);
  }
}
