/** One throwaway host for a test file: made before its tests, removed after them, also when they fail. */
import { closeAllHosts } from "../../provider";
import { TestHost, TestLab } from "./throwawayHosts";

/** Whether a process runs on the host: a zombie (killed, not yet reaped where PID 1 does not reap) does not. */
export function running(host: TestHost, pid: unknown): boolean {
  const state = host.sh(["ps", "-o", "stat=", "-p", String(Number(pid))], { allowFailure: true }).trim();
  return state !== "" && !state.startsWith("Z");
}

export function useTestHost(ready: (host: TestHost, lab: TestLab) => void): void {
  let lab: TestLab | undefined;
  beforeAll(async () => {
    lab = await TestLab.create(1);
    ready(lab.hosts[0], lab);
  });
  afterAll(() => {
    closeAllHosts();
    lab?.destroy();
  });
}
