/**
 * The planner's allocation step: what a topology asks of allocateLab (provider/lab/allocation.ts, which
 * seats subnets, addresses and VNIs and keeps every seat of `previous`), and the names of the devices the
 * Lab makes on its hosts, seated by a hash of their identity as well.
 */
import { hashSeat } from "../../provider/lab/addressing";
import { allocateLab, LabAllocations, LabDemand, Refuse } from "../../provider/lab/allocation";
import type { Segment, SegmentPlan } from "./plan";
import type { CheckedLabSpec } from "./spec";

/** The allocation of a topology's segments (`spanning`: those across hosts, which get VNIs), and what it was made from. */
export function allocate(
  spec: CheckedLabSpec,
  segments: Segment[],
  spanning: Segment[],
): { demand: LabDemand; allocations: LabAllocations } {
  const demand: LabDemand = {
    segments: segments.map((s) => ({
      kind: s.kind,
      id: s.id,
      members: s.members.map((m) => m.endpoint),
      ...(s.addresses ? { addresses: s.addresses } : {}),
      ...(spanning.includes(s) ? { spanning: true as const } : {}),
    })),
    ...(spec.pools ? { pools: spec.pools } : {}),
    salt: spec.namespacePrefix ?? "",
  };
  return { demand, allocations: allocateLab(demand, spec.previous) };
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/**
 * The name of a device the Lab makes on a host: "nl" + role + "-" + 10 base32 characters of a hash of its
 * identity (salted with the namespace prefix): 14 bytes, within IFNAMSIZ, unlikely to meet a name a person chose.
 */
export function deviceName(prefix: string, role: string, ...identity: string[]): string {
  const hash = hashSeat("ifname", [prefix, ...identity].join("\0"), 0, 2 ** 50);
  const digits = Array.from({ length: 10 }, (_, i) => BASE32[Math.floor(hash / 32 ** i) % 32]).join("");
  return `nl${role}-${digits}`;
}

/** Generated names must not meet on a host; with 50 bits of hash they should not, but a clash must not reach the kernel. */
export function checkDeviceNames(segments: SegmentPlan[], refuse: Refuse): void {
  const seen = new Map<string, string>();
  for (const s of segments) {
    const names = [
      ...s.bridges.map((b) => [b.host, b.name]),
      ...s.members.filter((m) => m.hostVeth).map((m) => [m.host, m.hostVeth!]),
      ...(s.vxlan?.ends ?? []).map((e) => [e.host, e.name]),
      ...(s.park ? [[s.members[0].host, s.park]] : []),
    ];
    for (const [host, device] of names) {
      const other = seen.get(`${host}/${device}`);
      if (other) refuse(`${s.kind} ${s.id}`, `its generated device name ${device} on host ${host} is already ${other}'s; rename one`);
      seen.set(`${host}/${device}`, `${s.kind} ${s.id}`);
    }
  }
}
