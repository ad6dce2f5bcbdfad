/**
 * import.test.ts's netem proof inside User-Mode Linux (test/harness/uml-run.sh), whose kernel has netem (but no
 * iptables nat, so the hand-made lab's other tests are skipped there): a qdisc made by hand imports,
 * declares with no change, updates, and its delete restores the default.
 */
import { jestUnderUml } from "../harness/uml";

const RUN_TIMEOUT_S = 300;

test(
  "under UML, a netem qdisc made by hand imports, updates and deletes (the netem branch ran and passed); no UML process or file is left",
  () => {
    const run = jestUnderUml(["test/integration/import.test.ts"], "^a netem qdisc", RUN_TIMEOUT_S);
    expect(run.output).toMatch(/✓ made by hand imports with its values, updates, and its delete restores the default qdisc/);
    expect(run.output).toMatch(/^Tests: +\d+ skipped, 1 passed, \d+ total$/m);
    expect(run.status).toBe(0);
    expect(run.leftFiles).toEqual([]);
    expect(run.leftProcesses).toBe("");
  },
  (RUN_TIMEOUT_S + 60) * 1000,
);
