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
}

export interface Host {
  /** Printable name of the target (user@host:port), never credentials. */
  readonly label: string;
  run(argv: Argv, options?: RunOptions): Promise<CommandResult>;
}

/** `ip` takes the namespace as a flag; anything else is run through `ip netns exec`. */
export function inNamespace(namespace: string | undefined, argv: Argv): Argv {
  if (!namespace) return argv;
  if (argv[0] === "ip") return ["ip", "-n", namespace, ...argv.slice(1)];
  return ["ip", "netns", "exec", namespace, ...argv];
}
