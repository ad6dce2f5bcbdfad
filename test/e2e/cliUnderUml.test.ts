/**
 * `pulumi-netns inspect` and `graph` showing an impaired link need a stack whose link has netem, which this
 * project's kernels lack: cli.test.ts runs here inside User-Mode Linux (test/harness/uml-run.sh), its up,
 * the inspect and graph checks (the netem branch of their titles) and destroy only: 3 to 4 minutes.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT, requirePulumiCli } from "../harness/pulumiWorkdir";
import { jestUnderUml } from "../harness/uml";

const RUN_TIMEOUT_S = 600;

/** The test's Pulumi workdirs: they live in the checkout's .work/, which UML writes through hostfs. */
function cliWorkdirs(): string[] {
  const dir = join(REPO_ROOT, ".work");
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.startsWith("e2e-cli-")) : [];
}

test(
  "under UML, inspect shows the link's impairment and graph draws it (the netem branch passed); no UML process or file left",
  () => {
    requirePulumiCli();
    const workdirsBefore = cliWorkdirs();
    const run = jestUnderUml(["test/e2e/cli.test.ts"], "^(inspect|graph|no credential)", RUN_TIMEOUT_S);
    const impaired = "with the link across the hosts impaired \\(20 ms ±2 ms\\)";
    expect(run.output).toMatch(new RegExp(`✓ inspect: every node with host, namespace, live interfaces and services, .* ${impaired}`));
    expect(run.output).toMatch(/✓ inspect --format json/);
    expect(run.output).toMatch(new RegExp(`✓ graph: DOT, Mermaid and SVG drawn from the stack are the Lab's own pictures: .* ${impaired}`));
    expect(run.output).toMatch(/✓ no credential in anything printed; destroy leaves both hosts as they were/);
    expect(run.output).not.toMatch(/no netem in this kernel/);
    expect(run.output).toMatch(/^Tests: +\d+ skipped, 4 passed, \d+ total$/m);
    expect(run.status).toBe(0);
    expect(run.leftFiles).toEqual([]);
    expect(run.leftProcesses).toBe("");
    expect(cliWorkdirs()).toEqual(workdirsBefore);
  },
  (RUN_TIMEOUT_S + 60) * 1000,
);
