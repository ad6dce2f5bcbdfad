/**
 * The netem proof of crossHost.test.ts needs a kernel with netem, which this project's machines lack
 * (CONFIG_NET_SCH_NETEM unset, no modules): it runs here inside User-Mode Linux (scripts/uml-run.sh),
 * whose kernel has it, on throwaway hosts made inside UML. UML gets no network device at all.
 */
import { jestUnderUml } from "../harness/uml";

const RUN_TIMEOUT_S = 540;

test("under UML, netem's delay, drift and delete are proven (the netem branch ran and passed); no UML process or file is left", () => {
  const run = jestUnderUml("test/integration/crossHost.test.ts", "Netem", RUN_TIMEOUT_S);
  expect(run.output).toMatch(/✓ 20 ms of delay shows in the RTT; a hand-made tc qdisc change is drift that update repairs/);
  expect(run.output).not.toMatch(/on a kernel without netem/);
  expect(run.output).toMatch(/^Tests: +2 skipped, 1 passed, 3 total$/m);
  expect(run.status).toBe(0);
  expect(run.leftFiles).toEqual([]);
  expect(run.leftProcesses).toBe("");
}, (RUN_TIMEOUT_S + 60) * 1000);
