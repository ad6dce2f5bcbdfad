/**
 * The netem proof of crossHost.test.ts needs a kernel with netem, which this project's machines lack
 * (CONFIG_NET_SCH_NETEM unset, no modules): it runs here inside User-Mode Linux (scripts/uml-run.sh),
 * whose kernel has it, on throwaway hosts made inside UML. UML gets no network device at all.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../scripts/pulumiWorkdir";

const RUN_TIMEOUT_S = 540;

test("under UML, netem's delay, drift and delete are proven (the netem branch ran and passed); no UML process or file is left", () => {
  // The run directory goes here, so that what is left of it (and processes naming it) can be seen.
  const parent = mkdtempSync(join(tmpdir(), "pnt-uml-"));
  try {
    // --forceExit: after the proof, ssh2 may wait on a socket to a host already removed (TCP gives up after ~15 min).
    const jest = ["node_modules/.bin/jest", "--verbose", "--forceExit", "test/integration/crossHost.test.ts", "-t", "Netem"];
    const started = Date.now();
    const result = spawnSync("bash", ["scripts/uml-run.sh", ...jest], {
      cwd: REPO_ROOT,
      env: { ...process.env, TMPDIR: parent, UML_RUN_TIMEOUT: String(RUN_TIMEOUT_S) },
      encoding: "utf8",
      timeout: (RUN_TIMEOUT_S + 30) * 1000,
    });
    const output = result.stdout + result.stderr;
    console.log(`UML run took ${Math.round((Date.now() - started) / 1000)} s:\n${output}`);
    expect(output).toMatch(/✓ 20 ms of delay shows in the RTT; a hand-made tc qdisc change is drift that update repairs/);
    expect(output).not.toMatch(/on a kernel without netem/);
    expect(output).toMatch(/^Tests: +2 skipped, 1 passed, 3 total$/m);
    expect(result.status).toBe(0);

    expect(readdirSync(parent)).toEqual([]);
    expect(spawnSync("pgrep", ["-af", parent], { encoding: "utf8" }).stdout).toBe("");
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
}, (RUN_TIMEOUT_S + 60) * 1000);
