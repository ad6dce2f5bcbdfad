/**
 * A command attached to this process, for the command line (`pulumi-netns exec` and `capture`): a session
 * of its own on a connection of its own, not the pool's shells (which collect a command's output in memory
 * and end it with markers). Dialed as every other connection (host key check, jump host), run through
 * `sudo -n` when the connection says so; its output streamed as it comes, bytes as they are, or on a
 * pseudo-terminal when asked.
 *
 * sshd refuses the protocol's own signal request for a root login ("session signalling requires privilege
 * separation"), so the command carries a random mark in its environment, which its children inherit, and
 * an interrupt is a second command on the same connection that signals every process with that mark.
 */
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { constants } from "node:os";
import type { Readable, Writable } from "node:stream";
import type { ClientChannel } from "ssh2";
import type { Connection } from "../connection";
import { targetLabel } from "../connection";
import { ConnectionError } from "../errors";
import type { Argv } from "../host";
import { shellLine } from "../shell";
import { dial } from "./client";

export interface AttachedIo {
  /** Forwarded to the command; its end ends the command's input. Without it, the input stays open until `endInput`. */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Runs the command on a pseudo-terminal of this size; the command's stderr then comes on stdout, as on any terminal. */
  terminal?: { term: string; rows: number; cols: number };
}

export interface Attached {
  /** The command's exit code, once it ended and its output was handed on; 128 + N when signal N ended it. */
  readonly exitCode: Promise<number>;
  /** Sends the signal to the command and every process it started (that kept its environment). */
  signal(name: "INT" | "TERM" | "KILL"): Promise<void>;
  /**
   * Ends the command and what it started (TERM, then KILL after `graceMs`), then the session: sshd does not
   * stop a command without a terminal when its session closes.
   */
  stop(graceMs: number): Promise<void>;
  /** Ends the command's input (it reads end of file). */
  endInput(): void;
  resize(rows: number, cols: number): void;
  /** Closes the session and its connection at once. */
  close(): void;
}

const MARK = "PULUMI_NETNS_SESSION";

/** Signals ($1) the processes whose environment holds the mark $2; the script itself does not hold it. */
const SIGNAL_MARKED = `for environ in $(grep -lxzF "${MARK}=$2" /proc/[0-9]*/environ 2>/dev/null); do
  pid=\${environ#/proc/}; kill -s "$1" "\${pid%/environ}" 2>/dev/null
done; true`;

/** Resolves once the command runs on the host. */
export async function attach(connection: Connection, argv: Argv, io: AttachedIo): Promise<Attached> {
  const label = targetLabel(connection);
  const dialed = await dial(connection);
  const sudo = connection.sudo ? ["sudo", "-n"] : [];
  const mark = randomBytes(8).toString("hex");
  // `exec`: the login shell that sshd hands the line to makes way for the command.
  const line = shellLine(["exec", ...sudo, "env", `${MARK}=${mark}`, ...argv]);
  let channel: ClientChannel;
  try {
    channel = await dialed.exec(line, io.terminal && { ...io.terminal, width: 0, height: 0 });
  } catch (err) {
    dialed.close();
    throw err;
  }
  channel.pipe(io.stdout, { end: false });
  channel.stderr.pipe(io.stderr, { end: false });
  io.stdin?.pipe(channel);
  let status: number | undefined;
  channel.on("exit", (code: number | null, signal?: string) => {
    // ssh2 names a signal as "SIGINT".
    status = code ?? 128 + (constants.signals[signal as keyof typeof constants.signals] ?? 0);
  });
  const signal = async (name: "INT" | "TERM" | "KILL") => {
    const signaller = await dialed.exec(shellLine([...sudo, "sh", "-c", SIGNAL_MARKED, "sh", name, mark]));
    signaller.resume();
    signaller.stderr.resume();
    await new Promise((resolve) => signaller.on("close", resolve));
  };
  const exitCode = new Promise<number>((resolve, reject) =>
    channel.on("close", () => {
      io.stdin?.unpipe(channel);
      dialed.close();
      if (status !== undefined) resolve(status);
      else reject(new ConnectionError("connection-lost", label, `the session ended before the command did (${line}); it may still run`));
    }),
  );
  return {
    exitCode,
    signal,
    async stop(graceMs) {
      await signal("TERM");
      const ended = await Promise.race([
        exitCode.then(
          () => true,
          () => true,
        ),
        delay(graceMs).then(() => false),
      ]);
      if (!ended) await signal("KILL");
      channel.close();
      dialed.close();
    },
    endInput: () => channel.end(),
    resize: (rows, cols) => channel.setWindow(rows, cols, 0, 0),
    close: () => {
      channel.close();
      dialed.close();
    },
  };
}
