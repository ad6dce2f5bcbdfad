/**
 * The two-host Lab's impairment (20 ms of netem on the link across hosts) through the real Pulumi CLI
 * needs a kernel with netem, which this project's machines lack: twoHostLab.test.ts runs here inside
 * User-Mode Linux (test/harness/uml-run.sh), up, the impairment and destroy only: ~5 minutes (the whole file
 * took ~10 in UML; its other tests run on this machine's kernel anyway).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { jestUnderUml } from "../harness/uml";

const RUN_TIMEOUT_S = 600;

/** The Lab's Pulumi workdirs: they live in the checkout's .work/, which UML writes through hostfs. */
function labWorkdirs(): string[] {
  const dir = join(REPO_ROOT, ".work");
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.startsWith("e2e-two-host-lab-")) : [];
}

test(
  "under UML, the Lab's 20 ms impairment shows in the RTT and its drift is repaired (the netem branch ran and passed); no UML process or file is left",
  () => {
    requirePulumiCli();
    const workdirsBefore = labWorkdirs();
    const run = jestUnderUml(["test/e2e/twoHostLab.test.ts"], "^(up builds|impair: |destroy leaves)", RUN_TIMEOUT_S);
    expect(run.output).toMatch(/✓ up builds one lab over two hosts/);
    expect(run.output).toMatch(
      /✓ impair: 20 ms on the link across hosts shows in the RTT \(at least 20 ms, below 35 ms\); a hand-made tc change is drift that up repairs/,
    );
    expect(run.output).toMatch(/✓ destroy leaves both hosts as they were/);
    expect(run.output).not.toMatch(/on a kernel without netem/);
    expect(run.output).toMatch(/^Tests: +\d+ skipped, 3 passed, \d+ total$/m);
    expect(run.status).toBe(0);
    expect(run.leftFiles).toEqual([]);
    expect(run.leftProcesses).toBe("");
    expect(labWorkdirs()).toEqual(workdirsBefore);
  },
  (RUN_TIMEOUT_S + 60) * 1000,
);
