import { hashSeat } from "../../provider/lab/addressing";

/**
 * The first of `candidates` that sorts before `than` and whose first hash seat is `than`'s: a name that,
 * allocated afresh, takes the seat `than` has (keys that sort first probe first).
 */
export function nameMeeting(than: string, salt: string, size: number, candidates: (i: number) => string): string {
  for (let i = 0; i < 100_000; i++) {
    const name = candidates(i);
    if (name < than && hashSeat(salt, name, 0, size) === hashSeat(salt, than, 0, size)) return name;
  }
  throw new Error(`no name meets ${than}`);
}
