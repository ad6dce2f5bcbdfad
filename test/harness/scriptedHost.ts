/** A Host for unit tests: each command gets the answer the test scripts for it, and what ran is kept. */
import { refuseFalseRead } from "../../provider/host";
import type { Argv, CommandResult, Host } from "../../provider/host";

export function scriptedHost(answer: (argv: Argv) => Partial<CommandResult>): Host & { ran: string[] } {
  const ran: string[] = [];
  return {
    label: "root@test:22",
    ran,
    async run(argv, options) {
      refuseFalseRead(argv, options);
      ran.push(argv.join(" "));
      const result = { command: argv.join(" "), exitCode: 0, stdout: "", stderr: "", durationMs: 0, ...answer(argv) };
      if (result.exitCode !== 0 && !options?.allowFailure) throw new Error(`unexpected failure: ${result.command}`);
      return result;
    },
  };
}
