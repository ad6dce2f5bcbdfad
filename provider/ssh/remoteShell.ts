/**
 * One long-lived `/bin/sh` on the target, fed one command at a time on stdin. Each command is
 * followed by end markers (see endMarkers.ts), so a command costs one round trip instead of a new SSH
 * session and a login shell (measured: ~2-8 ms versus 53-515 ms).
 */
import { randomBytes } from "node:crypto";
import type { ClientChannel } from "ssh2";
import { CommandOutputParser, commandScript, ShellOutput } from "./endMarkers";

interface Pending {
  parser: CommandOutputParser;
  resolve(output: ShellOutput): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** Thrown when the shell goes away under a command; what the command did is unknown. */
export class ShellClosedError extends Error {
  constructor(readonly stderr: string) {
    super("the remote shell closed");
  }
}

export class ShellTimeoutError extends Error {}

const ENVIRONMENT = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; export PATH LC_ALL; unset HISTFILE";

export class RemoteShell {
  private pending?: Pending;
  private closed = false;
  private readonly closeListeners: (() => void)[] = [];

  private constructor(
    private readonly channel: ClientChannel,
    private readonly outputCapBytes: number,
  ) {
    channel.on("data", (chunk: Buffer) => this.receive("stdout", chunk));
    channel.stderr.on("data", (chunk: Buffer) => this.receive("stderr", chunk));
    channel.on("close", () => this.fail(new ShellClosedError(this.pending?.parser.stderrSoFar().trim() ?? "")));
  }

  /** Takes a channel running a shell ("/bin/sh" or "sudo -n /bin/sh") and checks that it answers. */
  static async open(channel: ClientChannel, timeoutMs: number, outputCapBytes: number): Promise<RemoteShell> {
    const shell = new RemoteShell(channel, outputCapBytes);
    // Anything the login shell printed before us is swallowed by this first command.
    await shell.run(ENVIRONMENT, timeoutMs);
    return shell;
  }

  /** Called once when the shell is gone, whether it closed by itself (idle or not) or was closed. */
  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  run(line: string, timeoutMs: number): Promise<ShellOutput> {
    if (this.closed) return Promise.reject(new ShellClosedError(""));
    if (this.pending) return Promise.reject(new Error("RemoteShell runs one command at a time"));
    const marker = `__pulumi_netns_${randomBytes(8).toString("hex")}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new ShellTimeoutError(`no answer within ${timeoutMs / 1000}s`));
      }, timeoutMs);
      this.pending = { parser: new CommandOutputParser(marker, this.outputCapBytes), resolve, reject, timer };
      this.channel.write(commandScript(line, marker));
    });
  }

  close(): void {
    this.fail(new ShellClosedError(""));
  }

  private receive(stream: "stdout" | "stderr", chunk: Buffer): void {
    const p = this.pending;
    // Output between commands belongs to none of them.
    if (!p) return;
    let output: ShellOutput | undefined;
    try {
      output = p.parser.push(stream, chunk);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!output) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(output);
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    if (!this.closed) {
      this.closed = true;
      this.channel.close();
      for (const listener of this.closeListeners.splice(0)) listener();
    }
    if (p) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
