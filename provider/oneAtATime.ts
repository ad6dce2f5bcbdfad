/**
 * Pulumi runs resources in parallel. Work on one shared thing of a host (its FORWARD chain, the
 * addresses of one device) runs here one at a time per key; another process (a second stack) is not
 * covered.
 */
const queues = new Map<string, Promise<unknown>>();

export function oneAtATime<T>(key: string, work: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).catch(() => undefined).then(work);
  queues.set(key, run);
  run
    .catch(() => undefined)
    .then(() => {
      if (queues.get(key) === run) queues.delete(key);
    });
  return run;
}
