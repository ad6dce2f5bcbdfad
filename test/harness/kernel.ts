/** What the kernel the tests run on can do. */
import { execFileSync } from "node:child_process";

/** This project's machines run a kernel without netem (CONFIG_NET_SCH_NETEM unset); UML's has it. */
export const kernelHasNetem = !/CONFIG_NET_SCH_NETEM is not set/.test(
  execFileSync("sh", ["-c", "zcat /proc/config.gz 2>/dev/null || true"], { encoding: "utf8" }),
);
