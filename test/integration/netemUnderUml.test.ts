/**
 * Proofs of crossHost.test.ts and resources.test.ts that need another kernel than this project's machines run, given inside
 * User-Mode Linux (test/harness/uml-run.sh) on throwaway hosts made inside UML (UML gets no network device):
 * netem (CONFIG_NET_SCH_NETEM is unset here, no modules), and Debian 12's kernel 6.1, which UML runs,
 * where `ip link add name N netns NS` looked N up in the host's own namespace (Vxlan, Veth). One boot.
 */
import { jestUnderUml } from "../harness/uml";

const RUN_TIMEOUT_S = 540;

test(
  "under UML (kernel 6.1), netem's delay, drift and delete are proven, and a Vxlan and veth ends in namespaces named like devices of the host's; no UML process or file is left",
  () => {
    const run = jestUnderUml(
      ["test/integration/crossHost.test.ts", "test/integration/resources.test.ts"],
      "Netem|host's own namespace|ends named like the host's own eth0",
      RUN_TIMEOUT_S,
    );
    expect(run.output).toMatch(/✓ 20 ms of delay shows in the RTT; a hand-made tc qdisc change is drift that update repairs/);
    expect(run.output).not.toMatch(/on a kernel without netem/);
    expect(run.output).toMatch(/✓ a device in a namespace, named like a device in the host's own namespace/);
    expect(run.output).toMatch(/✓ Veth: ends named like the host's own eth0 are made in their namespaces/);
    // The three above, nothing failed; the files' other tests are skipped.
    expect(run.output).toMatch(/^Tests: +\d+ skipped, 3 passed, \d+ total$/m);
    expect(run.status).toBe(0);
    expect(run.leftFiles).toEqual([]);
    expect(run.leftProcesses).toBe("");
  },
  (RUN_TIMEOUT_S + 60) * 1000,
);
