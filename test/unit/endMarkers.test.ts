/** The remote shell's end-marker protocol, fed the way an SSH channel delivers it: in arbitrary chunks. */
import { spawnSync } from "node:child_process";
import { CommandOutputParser, commandScript, OutputCapError, ShellOutput } from "../../provider/ssh/endMarkers";

const MARKER = "__pulumi_netns_0123456789abcdef";
const CAP = 1024 * 1024;

/** The streams a command leaves on the channel, as the real script prints them. */
function channelBytes(stdout: string, stderr: string, exitCode: number): { stdout: Buffer; stderr: Buffer } {
  return {
    stdout: Buffer.from(`${stdout}\n${MARKER}:${String(exitCode).padStart(3, "0")}\n`),
    stderr: Buffer.from(`${stderr}\n${MARKER}\n`),
  };
}

function chunks(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

/** Feeds both streams alternately, one chunk each; the output must come with the very last chunk. */
function feed(parser: CommandOutputParser, stdout: Buffer[], stderr: Buffer[]): { output?: ShellOutput } {
  let output: ShellOutput | undefined;
  for (let i = 0; i < Math.max(stdout.length, stderr.length); i++) {
    for (const [name, list] of [
      ["stdout", stdout],
      ["stderr", stderr],
    ] as const) {
      if (i >= list.length) continue;
      expect(output).toBeUndefined();
      output = parser.push(name, list[i]);
    }
  }
  return { output };
}

test("the written script prints exactly the markers the parser expects", () => {
  // A local sh stands in for the remote one: no host, no network.
  const script = commandScript("sh -c 'printf \"a\\nb\"; echo err >&2; exit 7'", MARKER);
  const { stdout, stderr } = spawnSync("sh", ["-c", script]);
  const parser = new CommandOutputParser(MARKER, CAP);
  expect(parser.push("stderr", stderr)).toBeUndefined();
  expect(parser.push("stdout", stdout)).toEqual({ exitCode: 7, stdout: "a\nb", stderr: "err\n" });
});

test.each([1, 2, 3, 7, 16, MARKER.length, MARKER.length + 1, 4096])(
  "markers split across chunks of %i bytes are found, at every offset",
  (size) => {
    for (const prefix of ["", "x", "xy", "line\n", "ab\ncd"]) {
      const bytes = channelBytes(`${prefix}out ${"é".repeat(5)}`, `${prefix}warn`, 2);
      const { output } = feed(new CommandOutputParser(MARKER, CAP), chunks(bytes.stdout, size), chunks(bytes.stderr, size));
      expect(output).toEqual({ exitCode: 2, stdout: `${prefix}out ${"é".repeat(5)}`, stderr: `${prefix}warn` });
    }
  },
);

test("completes only when both streams have their marker, whichever comes last", () => {
  const bytes = channelBytes("out", "err", 0);
  const stdoutFirst = new CommandOutputParser(MARKER, CAP);
  expect(stdoutFirst.push("stdout", bytes.stdout)).toBeUndefined();
  expect(stdoutFirst.push("stderr", bytes.stderr)).toEqual({ exitCode: 0, stdout: "out", stderr: "err" });
  const stderrFirst = new CommandOutputParser(MARKER, CAP);
  expect(stderrFirst.push("stderr", bytes.stderr)).toBeUndefined();
  expect(stderrFirst.push("stdout", bytes.stdout.subarray(0, bytes.stdout.length - 2))).toBeUndefined();
  expect(stderrFirst.push("stdout", bytes.stdout.subarray(bytes.stdout.length - 2))).toEqual({
    exitCode: 0,
    stdout: "out",
    stderr: "err",
  });
});

test("a marker of another command, or a partial one, is ordinary output", () => {
  const other = "__pulumi_netns_ffffffffffffffff";
  const stdout = `${other}:000\n\n${MARKER}\n${MARKER.slice(0, 10)}`;
  const bytes = channelBytes(stdout, `\n${MARKER}:001\n`, 255);
  const { output } = feed(new CommandOutputParser(MARKER, CAP), chunks(bytes.stdout, 5), chunks(bytes.stderr, 5));
  expect(output).toEqual({ exitCode: 255, stdout, stderr: `\n${MARKER}:001\n` });
});

test("large output in many chunks comes back whole, each byte searched and copied about once", () => {
  const big = "0123456789abcdef\n".repeat(50_000);
  const bytes = channelBytes(big, "", 0);
  const pieces = chunks(bytes.stdout, 997);
  const searched = jest.spyOn(Buffer.prototype, "indexOf");
  const concatenated = jest.spyOn(Buffer, "concat");
  try {
    const { output } = feed(new CommandOutputParser(MARKER, CAP), pieces, [bytes.stderr]);
    expect(output?.stdout).toBe(big);
    const searchedBytes = searched.mock.contexts.reduce((sum, buf) => sum + (buf as Buffer).length, 0);
    const copiedBytes = concatenated.mock.results.reduce((sum, r) => sum + (r.value as Buffer).length, 0);
    // Rescanning or re-joining everything per chunk would be ~850 times the output here.
    const perChunkSeams = pieces.length * 2 * (MARKER.length + 2);
    expect(searchedBytes).toBeGreaterThanOrEqual(bytes.stdout.length);
    expect(copiedBytes).toBeGreaterThanOrEqual(bytes.stdout.length);
    expect(searchedBytes).toBeLessThanOrEqual(bytes.stdout.length + bytes.stderr.length + perChunkSeams);
    expect(copiedBytes).toBeLessThanOrEqual(bytes.stdout.length + bytes.stderr.length + perChunkSeams);
  } finally {
    searched.mockRestore();
    concatenated.mockRestore();
  }
});

test("output over the cap throws as soon as the cap is certainly passed, naming the cap", () => {
  const parser = new CommandOutputParser(MARKER, CAP);
  const piece = Buffer.alloc(64 * 1024, "y");
  let pushed = 0;
  const err = (() => {
    try {
      for (;;) {
        parser.push(pushed % 2 ? "stderr" : "stdout", piece);
        pushed++;
      }
    } catch (e) {
      return e as OutputCapError;
    }
  })();
  expect(err).toBeInstanceOf(OutputCapError);
  expect(err.capBytes).toBe(CAP);
  expect(err.message).toBe("more than 1 MiB of output");
  expect(pushed * piece.length).toBe(CAP);
});

test("exactly the cap passes; one byte more, counting both streams, does not", () => {
  const half = "z".repeat(CAP / 2);
  const exact = channelBytes(half, half, 0);
  expect(feed(new CommandOutputParser(MARKER, CAP), [exact.stdout], [exact.stderr]).output?.stdout).toBe(half);
  const over = channelBytes(`${half}!`, half, 0);
  const parser = new CommandOutputParser(MARKER, CAP);
  expect(parser.push("stdout", over.stdout)).toBeUndefined();
  expect(() => parser.push("stderr", over.stderr)).toThrow(OutputCapError);
});

test("what a command wrote to stderr so far explains a shell that died under it", () => {
  const parser = new CommandOutputParser(MARKER, CAP);
  parser.push("stderr", Buffer.from("sudo: a password "));
  parser.push("stderr", Buffer.from("is required\n"));
  expect(parser.stderrSoFar()).toBe("sudo: a password is required\n");
});
