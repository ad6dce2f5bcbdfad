/**
 * netem delays packets as they leave an interface, so each direction of a link passes the netem of
 * one end: each end gets half the delay and half the jitter, so that the round trip sees the link's
 * whole delay. Loss, corruption, duplication, reordering, rate and limit apply per direction as given.
 */
type Timed = { delayMs?: number; jitterMs?: number };

function scaled<T extends Timed>(impairment: T, factor: number): T {
  const times = (["delayMs", "jitterMs"] as const).filter((field) => impairment[field] !== undefined);
  return { ...impairment, ...Object.fromEntries(times.map((field) => [field, impairment[field]! * factor])) };
}

/** What each end of a link gets. */
export const endImpairment = <T extends Timed>(link: T): T => scaled(link, 1 / 2);

/** The link an end's settings came from (the command line reads the ends back from state). */
export const linkImpairment = <T extends Timed>(end: T): T => scaled(end, 2);
