/**
 * Runs jest files inside User-Mode Linux (test/harness/uml-run.sh), for proofs this project's kernels
 * cannot give (no netem). UML gets no network device: its tests make their throwaway hosts inside it.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "./pulumiWorkdir";

export interface UmlJestRun {
  /** jest's output (and uml-run.sh's, on a failed boot or timeout). */
  output: string;
  status: number | null;
  seconds: number;
  /** What the run left behind: files in its private temp directory, processes naming it. */
  leftFiles: string[];
  leftProcesses: string;
}

/**
 * `jest --verbose FILE... [-t PATTERN]` inside UML (one boot); its wall time and output are printed. Throws
 * the init script's error when the boot failed before the tests (a missing tool, a failed mount).
 */
export function jestUnderUml(files: string[], testNamePattern: string | undefined, timeoutSeconds: number): UmlJestRun {
  // The run directory goes here, so that what is left of it (and processes naming it) can be seen.
  const parent = mkdtempSync(join(tmpdir(), "pnt-uml-"));
  try {
    // --forceExit: after the proof, ssh2 may wait on a socket to a host already removed (TCP gives up after ~15 min).
    const jest = ["node_modules/.bin/jest", "--verbose", "--forceExit", ...files, ...(testNamePattern ? ["-t", testNamePattern] : [])];
    const started = Date.now();
    const result = spawnSync("bash", ["test/harness/uml-run.sh", ...jest], {
      cwd: REPO_ROOT,
      env: { ...process.env, TMPDIR: parent, UML_RUN_TIMEOUT: String(timeoutSeconds) },
      encoding: "utf8",
      timeout: (timeoutSeconds + 30) * 1000,
    });
    const seconds = Math.round((Date.now() - started) / 1000);
    const output = result.stdout + result.stderr;
    console.log(`UML run of ${files.join(" ")} took ${seconds} s:\n${output}`);
    // A boot that failed says why in one line (test/harness/uml-init.sh): that line is the test's failure.
    const initError = /^uml-init: .*$/m.exec(output);
    if (initError) throw new Error(`UML did not run the tests: ${initError[0]}`);
    return {
      output,
      status: result.status,
      seconds,
      leftFiles: readdirSync(parent),
      leftProcesses: spawnSync("pgrep", ["-af", parent], { encoding: "utf8" }).stdout,
    };
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}
