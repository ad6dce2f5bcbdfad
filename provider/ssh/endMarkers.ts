/**
 * The protocol of the long-lived remote shell, as pure logic: each command is followed by an end
 * marker on stdout (carrying `$?`) and one on stderr. The parser cuts both streams at the markers as
 * chunks arrive, searching each chunk once (plus a marker-length seam with the bytes before it), so a
 * command printing N bytes costs O(N) however it is chunked, and output past a cap stops the command
 * instead of filling the provider's memory.
 */

/** Output one command may print (stdout and stderr together) before it is abandoned. */
export const OUTPUT_CAP_BYTES = 64 * 2 ** 20;

/** `$?` is 0-255: printed as three digits, the stdout marker line has a fixed length. */
const EXIT_CODE_DIGITS = 3;

export interface ShellOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export class OutputCapError extends Error {
  constructor(readonly capBytes: number) {
    super(`more than ${describeBytes(capBytes)} of output`);
  }
}

export function describeBytes(bytes: number): string {
  return bytes % 2 ** 20 === 0 ? `${bytes / 2 ** 20} MiB` : `${bytes} bytes`;
}

/** What is written to the shell's stdin to run `line` (already quoted) and mark its end. */
export function commandScript(line: string, marker: string): string {
  return `{ ${line}\n} </dev/null; ` + `printf '\\n%s:%0${EXIT_CODE_DIGITS}d\\n' ${marker} "$?"; printf '\\n%s\\n' ${marker} >&2\n`;
}

/** One stream, collected up to the first `needle` and `trailerBytes` after it. */
class MarkedStream {
  private readonly chunks: Buffer[] = [];
  size = 0;
  private needleAt = -1;
  /** The last needle-length-minus-one bytes seen: where a needle split across chunks begins. */
  private tail: Buffer = Buffer.alloc(0);

  constructor(
    private readonly needle: Buffer,
    private readonly trailerBytes: number,
  ) {}

  push(chunk: Buffer): void {
    if (this.needleAt < 0) this.search(chunk);
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  get complete(): boolean {
    return this.needleAt >= 0 && this.size >= this.needleAt + this.needle.length + this.trailerBytes;
  }

  text(): string {
    return Buffer.concat(this.chunks, this.size).toString("utf8");
  }

  /** Once complete: the bytes before the needle, and the trailer after it. Anything later is dropped. */
  cut(): { body: Buffer; trailer: Buffer } {
    const all = Buffer.concat(this.chunks, this.size);
    const trailerAt = this.needleAt + this.needle.length;
    return { body: all.subarray(0, this.needleAt), trailer: all.subarray(trailerAt, trailerAt + this.trailerBytes) };
  }

  private search(chunk: Buffer): void {
    const overlap = this.needle.length - 1;
    // A needle starting in the tail ends within the first `overlap` bytes of this chunk.
    const seam = Buffer.concat([this.tail, chunk.subarray(0, overlap)]);
    const inSeam = seam.indexOf(this.needle);
    if (inSeam >= 0) {
      this.needleAt = this.size - this.tail.length + inSeam;
      return;
    }
    const inChunk = chunk.indexOf(this.needle);
    if (inChunk >= 0) {
      this.needleAt = this.size + inChunk;
      return;
    }
    if (chunk.length >= overlap) {
      this.tail = chunk.subarray(chunk.length - overlap);
    } else {
      this.tail = Buffer.concat([this.tail.subarray(Math.max(0, this.tail.length + chunk.length - overlap)), chunk]);
    }
  }
}

/** Collects one command's stdout and stderr until both end markers have arrived. */
export class CommandOutputParser {
  private readonly stdout: MarkedStream;
  private readonly stderr: MarkedStream;
  private readonly markerBytes: number;

  constructor(
    marker: string,
    private readonly capBytes: number,
  ) {
    const stdoutNeedle = Buffer.from(`\n${marker}:`);
    const stderrNeedle = Buffer.from(`\n${marker}\n`);
    this.stdout = new MarkedStream(stdoutNeedle, EXIT_CODE_DIGITS + 1);
    this.stderr = new MarkedStream(stderrNeedle, 0);
    this.markerBytes = stdoutNeedle.length + EXIT_CODE_DIGITS + 1 + stderrNeedle.length;
  }

  /** What the command wrote to stderr so far, to explain a shell that died under it. */
  stderrSoFar(): string {
    return this.stderr.text();
  }

  /** Adds a chunk; returns the output once both markers are in. Throws OutputCapError past the cap. */
  push(stream: "stdout" | "stderr", chunk: Buffer): ShellOutput | undefined {
    (stream === "stdout" ? this.stdout : this.stderr).push(chunk);
    // Before the markers arrive, anything beyond cap plus their length is certainly the command's own.
    if (this.stdout.size + this.stderr.size > this.capBytes + this.markerBytes) throw new OutputCapError(this.capBytes);
    if (!this.stdout.complete || !this.stderr.complete) return undefined;
    const out = this.stdout.cut();
    const err = this.stderr.cut();
    if (out.body.length + err.body.length > this.capBytes) throw new OutputCapError(this.capBytes);
    return {
      exitCode: Number(out.trailer.subarray(0, EXIT_CODE_DIGITS).toString("latin1")),
      stdout: out.body.toString("utf8"),
      stderr: err.body.toString("utf8"),
    };
  }
}
