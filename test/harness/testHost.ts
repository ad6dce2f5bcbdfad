/** One throwaway host for a test file: made before its tests, removed after them, also when they fail. */
import { closeAllHosts } from "../../provider";
import { TestHost, TestLab } from "../../scripts/throwawayHosts";

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
