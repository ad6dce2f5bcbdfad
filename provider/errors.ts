import type { CommandResult } from "./host";

export type ConnectionFailure =
  "unreachable" | "auth-failed" | "host-key-unknown" | "host-key-mismatch" | "sudo-failed" | "timeout" | "connection-lost";

/** " in namespace "NS"" after an object's name, nothing for the host's own namespace. */
export const inNamespaceWords = (namespace: string | undefined) => (namespace ? ` in namespace "${namespace}"` : "");

/** The SSH side failed; `failure` says which way, the message says what to do about it. */
export class ConnectionError extends Error {
  constructor(
    readonly failure: ConnectionFailure,
    readonly target: string,
    detail: string,
  ) {
    super(`${target}: ${failure}: ${detail}`);
    this.name = "ConnectionError";
  }
}

/** A remote command exited non-zero. Carries the command, exit code and stderr; never credentials. */
export class CommandFailedError extends Error {
  constructor(
    readonly target: string,
    readonly result: CommandResult,
  ) {
    const stderr = result.stderr.trim() || result.stdout.trim() || "(no output)";
    super(`${target}: command failed (exit ${result.exitCode}): ${result.command}\n${stderr}`);
    this.name = "CommandFailedError";
  }
}

/** A command printed more than the provider holds for one command; its shell was closed. */
export class OutputTooLargeError extends Error {
  constructor(
    readonly target: string,
    readonly command: string,
    cap: string,
  ) {
    super(
      `${target}: output over the limit of ${cap} per command, from: ${command} ` +
        "(its shell was closed; the command may have had an effect)",
    );
    this.name = "OutputTooLargeError";
  }
}

/** The object a create would make is already there and adopt is off. */
export class AlreadyExistsError extends Error {
  constructor(target: string, what: string) {
    super(
      `${target}: ${what} already exists. Set \`adopt: true\` on the resource to take it over ` +
        `(or, on the native provider, \`pulumi import\` it), or remove it from the host.`,
    );
    this.name = "AlreadyExistsError";
  }
}

/** A create failed and removing what it made failed too: both, and what is left where, are said. */
export function partlyMade(err: unknown, left: string, cleanup: unknown): Error {
  const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));
  return new Error(`${reason(err)}\n(and removing what the create made failed, so ${left} is left on the host: ${reason(cleanup)})`);
}

/** The object a create would make is there already, tagged as another resource's (owner.ts). */
export class OwnedElsewhereError extends Error {
  constructor(target: string, what: string, otherOwner: string) {
    const [hash, stack] = otherOwner.split("@");
    super(
      `${target}: ${what} already exists and belongs to another resource (stack ${stack}, resource ${hash}). ` +
        "Remove it from that stack (or destroy that stack), or give this resource another name; `adopt` takes over only objects made outside Pulumi.",
    );
    this.name = "OwnedElsewhereError";
  }
}
