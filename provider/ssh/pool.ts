/**
 * One SSH connection per target for the whole provider process, shared by every resource of a
 * `pulumi up`. Commands queue for a few long-lived remote shells on that connection; the count never
 * exceeds `maxSessions`, and drops to what the server accepts when it refuses another channel.
 * Lives in the installed package, never in serialized provider state.
 */
import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import type { Connection } from "../connection";
import { targetIdentity, targetLabel } from "../connection";
import { CommandFailedError, ConnectionError, OutputTooLargeError } from "../errors";
import { refuseFalseRead } from "../host";
import type { Argv, CommandResult, Host, RunOptions } from "../host";
import { shellLine } from "../shell";
import { dial, Dialed } from "./client";
import { describeBytes, OUTPUT_CAP_BYTES, OutputCapError } from "./endMarkers";
import { RemoteShell, ShellClosedError, ShellTimeoutError } from "./remoteShell";

const IDLE_CLOSE_MS = 30_000;
/**
 * How long this process may go without a listing answering, on any host, and its listings still answer.
 * A refresh keeps reading, but not evenly: the engine asks for the next reads only when the ones waiting
 * are answered, so all its slots may wait seconds on one host's listing of hundreds of namespaces; and a
 * native provider serves one host per process, which then hears nothing. Fifteen seconds cover that. A
 * provider process serves one CLI operation, whose reads (a refresh) come before its changes, not among
 * them; what a refresh can miss is a change made meanwhile by someone else: by hand, or by another
 * provider process (each native Provider is one) working on the same host at the same time.
 */
export const LISTING_REUSE_MS = 15_000;

/**
 * This process's listings, on every host: a reading spell (as a refresh's) lasts while listings run or
 * answered within LISTING_REUSE_MS; a listing answers only in the spell it was taken in.
 */
const reading = { spell: 0, running: 0, lastAnswered: 0 };
const stillReading = (now: number) => reading.running > 0 || (now >= reading.lastAnswered && now - reading.lastAnswered < LISTING_REUSE_MS);

const SHELL_START_TIMEOUT_MS = 20_000;

/** A listing's run is over (answered, failed, or its connection closed): counted once. */
function ended(listing: Listing): void {
  if (!listing.running) return;
  listing.running = false;
  reading.running--;
  reading.lastAnswered = Date.now();
}

/** A listing and what it may answer: reads while this process ran nothing but reads on the host since it started. */
interface Listing {
  generation: number;
  /** The reading spell it was taken in. */
  spell: number;
  /** Asks while it runs share it. */
  running: boolean;
  result: Promise<CommandResult>;
}

interface Job {
  line: string;
  resolve(result: CommandResult): void;
  reject(err: Error): void;
}

/**
 * PULUMI_NETNS_DEBUG=1: each command, when it ended and how long it took, on stderr; =FILE (an absolute
 * path): appended to FILE instead (readable by its owner only: a command may carry a service's environment),
 * since a native provider's stderr reaches only the engine's own log. A file that cannot be written is
 * said once on stderr, and the log goes there: a log never stops the work.
 */
function debugLine(text: string): void {
  const target = process.env.PULUMI_NETNS_DEBUG;
  if (!target) return;
  const line = `[pulumi-netns] ${new Date().toISOString()} ${text}\n`;
  if (target.startsWith("/") && target !== unwritableLog) {
    try {
      appendFileSync(target, line, { mode: 0o600 });
      return;
    } catch (err) {
      unwritableLog = target;
      process.stderr.write(`[pulumi-netns] PULUMI_NETNS_DEBUG=${target}: ${(err as Error).message}; logging to stderr\n`);
    }
  }
  process.stderr.write(line);
}
let unwritableLog: string | undefined;

class Target implements Host {
  readonly label: string;
  readonly commandTimeoutSeconds: number;
  private dialed?: Promise<Dialed>;
  private readonly shells = new Set<RemoteShell>();
  private idle: RemoteShell[] = [];
  private queue: Job[] = [];
  private opening = 0;
  private maxShells: number;
  private idleTimer?: NodeJS.Timeout;
  /**
   * Bumped when any command but a listing or a read-only one starts and when it ends: it may have changed
   * the host. Shared by every connection to the same target (other credentials, say), whose writes count too.
   */
  private readonly changes: { generation: number };
  private readonly listings = new Map<string, Listing>();

  constructor(
    private readonly connection: Connection,
    private readonly outputCapBytes: number,
  ) {
    this.label = targetLabel(connection);
    this.commandTimeoutSeconds = connection.commandTimeout;
    this.maxShells = connection.maxSessions;
    const target = targetIdentity(connection);
    if (!changesByTarget.has(target)) changesByTarget.set(target, { generation: 0 });
    this.changes = changesByTarget.get(target)!;
  }

  async run(argv: Argv, options: RunOptions = {}): Promise<CommandResult> {
    refuseFalseRead(argv, options);
    const line = shellLine(argv);
    if (halted()) throw haltedError(line);
    const result = await (options.listing ? this.list(line) : options.readOnly ? this.enqueue(line) : this.change(line));
    if (result.exitCode !== 0 && !options.allowFailure) throw new CommandFailedError(this.label, result);
    return result;
  }

  private enqueue(line: string): Promise<CommandResult> {
    return new Promise<CommandResult>((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.pump();
    });
  }

  /** Any command but a listing or a read-only one may change the host: no listing from before it answers after it. */
  private async change(line: string): Promise<CommandResult> {
    this.changes.generation++;
    try {
      return await this.enqueue(line);
    } finally {
      this.changes.generation++;
    }
  }

  /** Asks for one listing share one run while this process keeps reading, as long as nothing else ran since it started. */
  private list(line: string): Promise<CommandResult> {
    const known = this.listings.get(line);
    const now = Date.now();
    const spell = stillReading(now) ? reading.spell : ++reading.spell;
    if (known && known.generation === this.changes.generation && (known.running || known.spell === spell)) {
      if (!known.running) reading.lastAnswered = now;
      return known.result;
    }
    const listing: Listing = { generation: this.changes.generation, spell, result: this.enqueue(line), running: true };
    this.listings.set(line, listing);
    reading.running++;
    listing.result
      .catch(() => undefined)
      .then((result) => {
        ended(listing);
        // A failed run is not an answer to keep.
        if (!result && this.listings.get(line) === listing) this.listings.delete(line);
      });
    return listing.result;
  }

  close(): void {
    // A listing still queued never answers once its shells are gone: it no longer keeps the process reading.
    for (const listing of this.listings.values()) ended(listing);
    this.listings.clear();
    clearTimeout(this.idleTimer);
    for (const shell of this.shells) shell.close();
    const dialed = this.dialed;
    this.dialed = undefined;
    dialed?.then(
      (d) => d.close(),
      () => undefined,
    );
  }

  private pump(): void {
    clearTimeout(this.idleTimer);
    while (this.queue.length > 0 && this.idle.length > 0) this.dispatch(this.idle.pop()!, this.queue.shift()!);
    if (this.queue.length > this.opening && this.shells.size + this.opening < this.maxShells) void this.openShell();
    if (this.queue.length === 0 && this.idle.length === this.shells.size && this.opening === 0) {
      this.idleTimer = setTimeout(() => this.close(), IDLE_CLOSE_MS);
      this.idleTimer.unref();
    }
  }

  private dispatch(shell: RemoteShell, job: Job): void {
    const started = Date.now();
    shell.run(job.line, this.connection.commandTimeout * 1000).then(
      (out) => {
        if (diesNow()) {
          job.reject(haltedError(job.line));
          return;
        }
        if (this.shells.has(shell)) this.idle.push(shell);
        const durationMs = Date.now() - started;
        job.resolve({ command: job.line, durationMs, ...out });
        this.pump();
        debugLine(`${this.label} exit=${out.exitCode} ${durationMs}ms: ${job.line}`);
      },
      (err) => {
        job.reject(this.explain(err, job.line));
        this.pump();
      },
    );
  }

  private explain(err: unknown, line: string): Error {
    if (err instanceof ShellTimeoutError) {
      return new ConnectionError("timeout", this.label, `${err.message} for: ${line} (its shell was closed)`);
    }
    if (err instanceof OutputCapError) {
      return new OutputTooLargeError(this.label, line, describeBytes(err.capBytes));
    }
    if (err instanceof ShellClosedError) {
      return new ConnectionError("connection-lost", this.label, `the connection dropped while running: ${line}; its effect is unknown`);
    }
    return err as Error;
  }

  private async openShell(): Promise<void> {
    this.opening++;
    try {
      const dialed = await this.connect();
      const channel = await dialed.exec(this.connection.sudo ? "sudo -n /bin/sh" : "/bin/sh");
      const shell = await RemoteShell.open(channel, SHELL_START_TIMEOUT_MS, this.outputCapBytes).catch((err) => {
        if (err instanceof ShellClosedError && this.connection.sudo) {
          throw new ConnectionError("sudo-failed", this.label, `\`sudo -n /bin/sh\` did not start: ${err.stderr || "no output"}`);
        }
        throw err instanceof ShellClosedError ? new ConnectionError("connection-lost", this.label, "the remote shell exited at once") : err;
      });
      this.shells.add(shell);
      this.idle.push(shell);
      // A shell can die while idle (killed on the host, its channel closed): it must not be handed out again.
      shell.onClose(() => {
        this.shells.delete(shell);
        this.idle = this.idle.filter((s) => s !== shell);
      });
    } catch (err) {
      const inFlight = this.opening - 1;
      if (this.shells.size + inFlight > 0) {
        // Refused one more channel (sshd MaxSessions), or others may still succeed: open no more than that.
        this.maxShells = this.shells.size + inFlight;
      } else {
        // Nothing can run: fail everything waiting now rather than dialling again for each job.
        this.maxShells = this.connection.maxSessions;
        for (const job of this.queue.splice(0)) job.reject(err as Error);
      }
    } finally {
      this.opening--;
      this.pump();
    }
  }

  private connect(): Promise<Dialed> {
    if (!this.dialed) {
      const dialed = dial(this.connection);
      this.dialed = dialed;
      dialed.then(
        (d) =>
          d.onClose(() => {
            // A connection closed after being replaced (idle close, redial) owns none of the shells.
            if (this.dialed !== dialed) return;
            this.dialed = undefined;
            this.maxShells = this.connection.maxSessions;
            for (const shell of this.shells) shell.close();
          }),
        () => {
          if (this.dialed === dialed) this.dialed = undefined;
        },
      );
    }
    return this.dialed;
  }
}

/**
 * For fault-injection tests only: with PULUMI_NETNS_KILL_AFTER_COMMANDS=K, this process kills itself
 * with SIGKILL once the K-th command's result is back, before anyone sees it: the command ran on the host,
 * and the engine never hears how. `haltAfterCommands(K)` is the same death for a test that drives the
 * provider in its own process: the K-th result and everything after it fail, and no later command is sent.
 */
const fault = { killAfter: Number(process.env.PULUMI_NETNS_KILL_AFTER_COMMANDS ?? 0), haltAfter: 0, done: 0 };

export function haltAfterCommands(count: number): void {
  Object.assign(fault, { haltAfter: count, done: 0 });
}

const halted = () => fault.haltAfter > 0 && fault.done >= fault.haltAfter;
const haltedError = (line: string) => new Error(`halted by the fault-injection test before the result of: ${line}`);

/** Counts a result that is back; true when the process is dead from here on (`haltAfterCommands`). */
function diesNow(): boolean {
  fault.done++;
  if (fault.killAfter > 0 && fault.done >= fault.killAfter) process.kill(process.pid, "SIGKILL");
  return halted();
}

const targets = new Map<string, Target>();
/** By target identity (host, port, jump host): what any connection to it may have changed. */
const changesByTarget = new Map<string, { generation: number }>();

/**
 * The shared host for a connection; same settings and credentials, same connection.
 * `outputCapBytes` is there for tests, which prove the cap without printing 64 MiB.
 */
export function hostFor(connection: Connection, outputCapBytes = OUTPUT_CAP_BYTES): Host {
  const key = createHash("sha256")
    .update(JSON.stringify([connection, outputCapBytes]))
    .digest("hex");
  let target = targets.get(key);
  if (!target) {
    target = new Target(connection, outputCapBytes);
    targets.set(key, target);
  }
  return target;
}

export function closeAllHosts(): void {
  for (const target of targets.values()) target.close();
  targets.clear();
}
