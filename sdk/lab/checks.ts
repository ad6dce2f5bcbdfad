/** Each node's Check targets, from the topology's `expect`. Pure, part of the planner. */
import { isIP } from "node:net";
import { canonicalAddress } from "../../provider/fields";
import { CheckTarget, targetKey } from "../../provider/kindSettings";
import { withoutPrefix } from "../../provider/lab/addressing";
import type { Refuse } from "../../provider/lab/allocation";
import type { NodePlan } from "./plan";
import type { CheckedLabSpec } from "./spec";

/** A node's address for checks: the first on an interface that is up (else on any), IPv4 first. */
const primaryAddress = (node: NodePlan) =>
  (node.interfaces.find((i) => !i.down && i.addresses.length > 0) ?? node.interfaces.find((i) => i.addresses.length > 0))?.addresses[0];

/** Sets each node's `checks`: explicit expectations win over "all-pairs" for the same target. */
export function planChecks(spec: CheckedLabSpec, nodes: NodePlan[], refuse: Refuse): void {
  const list = spec.expect === undefined ? [] : spec.expect === "all-pairs" ? ["all-pairs" as const] : spec.expect;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const targets = new Map(nodes.map((n) => [n.name, new Map<string, CheckTarget>()]));
  if (list.includes("all-pairs")) {
    for (const from of nodes) {
      for (const to of nodes) {
        const address = primaryAddress(to);
        if (to === from || !address) continue;
        const target: CheckTarget = { address: withoutPrefix(address), protocol: "icmp", expect: "reachable", label: to.name };
        targets.get(from.name)!.set(targetKey(target), target);
      }
    }
  }
  list.forEach((entry, i) => {
    if (entry === "all-pairs") return;
    const where = `expect[${i}]`;
    if (!byName.has(entry.from)) return refuse(where, `unknown node "${entry.from}" (nodes: ${[...byName.keys()].join(", ")})`);
    let address = isIP(entry.to) !== 0 ? canonicalAddress(entry.to) : undefined;
    let port = entry.port;
    if (!address) {
      const [node, suffix] = entry.to.split(":");
      if (suffix !== undefined && !/^\d+$/.test(suffix)) return refuse(where, `"${entry.to}" is a node, "node:PORT" or an address`);
      if (suffix !== undefined) port = Number(suffix);
      const to = byName.get(node);
      if (!to) return refuse(where, `unknown node "${node}" (nodes: ${[...byName.keys()].join(", ")})`);
      const primary = primaryAddress(to);
      if (!primary) return refuse(where, `node "${node}" has no address`);
      address = withoutPrefix(primary);
    }
    const protocol = entry.protocol ?? (port !== undefined ? "tcp" : "icmp");
    if ((protocol === "icmp") !== (port === undefined)) {
      return refuse(where, protocol === "icmp" ? "icmp takes no port" : `${protocol} needs a port ("node:PORT" or port)`);
    }
    const target: CheckTarget = {
      address,
      protocol,
      ...(port !== undefined ? { port } : {}),
      expect: entry.expect ?? "reachable",
      label: entry.to,
      ...(entry.maxLossPercent !== undefined ? { maxLossPercent: entry.maxLossPercent } : {}),
      ...(entry.maxRttMs !== undefined ? { maxRttMs: entry.maxRttMs } : {}),
    };
    targets.get(entry.from)!.set(targetKey(target), target);
  });
  for (const node of nodes) node.checks = [...targets.get(node.name)!.values()];
}
