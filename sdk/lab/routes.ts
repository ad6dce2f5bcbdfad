/**
 * A node's routes: each declared route checked against the node's segments and turned into the routes
 * its namespace gets, with a gateway address and a device. Pure, part of the planner.
 */
import { isIP } from "node:net";
import { bitsToAddress } from "../../provider/fields";
import { contains, Family, formatPrefixed, parsePrefixed, withoutPrefix } from "../../provider/lab/addressing";
import type { Refuse } from "../../provider/lab/allocation";
import type { Attachment, MemberPlan, RoutePlan } from "./plan";
import type { CheckedLabSpec } from "./spec";

const FAMILIES: Family[] = [4, 6];

const metricOf = (route: { metric?: number }) => (route.metric !== undefined ? { metric: route.metric } : {});
const addressIn = (member: MemberPlan, family: Family) => member.addresses.find((a) => parsePrefixed(a).family === family);

/** The routes of `node`, whose segments are `attached`; each route that cannot work is refused, naming the node. */
export function planRoutes(spec: CheckedLabSpec, node: string, attached: Attachment[], refuse: Refuse): RoutePlan[] {
  const where = `node ${node}`;
  const routes: RoutePlan[] = [];
  for (const route of spec.nodes[node].routes ?? []) {
    const about = `route to ${route.destination} via ${route.via}`;
    const destination = route.destination === "default" ? "default" : formatPrefixed(parsePrefixed(route.destination));
    const destinationFamily = destination === "default" ? undefined : parsePrefixed(destination).family;
    if (isIP(route.via) !== 0) {
      const family = isIP(route.via) as Family;
      const gateway = parsePrefixed(`${route.via}/${family === 4 ? 32 : 128}`);
      if (destinationFamily && destinationFamily !== family) {
        refuse(where, `${about}: the gateway and the destination are of different IP families`);
        continue;
      }
      const on = attached.find(({ member }) => {
        const own = addressIn(member, family);
        return own !== undefined && contains(parsePrefixed(own), gateway.bits);
      });
      if (!on) refuse(where, `${about}: ${route.via} is on none of ${node}'s subnets`);
      else if (on.member.addresses.some((a) => parsePrefixed(a).bits === gateway.bits))
        refuse(where, `${about}: ${route.via} is ${node}'s own address`);
      else routes.push({ destination, via: bitsToAddress(gateway.bits, family), device: on.member.ifname, ...metricOf(route) });
      continue;
    }
    const [peer, peerIfname] = route.via.split(":");
    if (!spec.nodes[peer]) {
      refuse(where, `${about}: unknown node "${peer}"`);
      continue;
    }
    if (peer === node) {
      refuse(where, `${about}: a node cannot route via itself`);
      continue;
    }
    if (!spec.nodes[peer].router) {
      refuse(where, `${about}: ${peer} is not a router (router: true gives it forwarding)`);
      continue;
    }
    const shared = attached
      .map(({ segment, member }) => ({
        member,
        gateway: segment.members.find((m) => m.node === peer && (!peerIfname || m.ifname === peerIfname)),
      }))
      .filter((x): x is { member: MemberPlan; gateway: MemberPlan } => x.gateway !== undefined);
    if (shared.length === 0) {
      refuse(where, `${about}: ${peer}${peerIfname ? `:${peerIfname}` : ""} shares no link or LAN with ${node}`);
      continue;
    }
    if (shared.length > 1) {
      const choices = shared.map((x) => `"${x.gateway.endpoint}"`).join(", ");
      refuse(where, `${about}: ${peer} shares several links or LANs with ${node}; name one of ${choices}`);
      continue;
    }
    const [{ member, gateway }] = shared;
    const usable = (destinationFamily ? [destinationFamily] : FAMILIES).filter((f) => addressIn(member, f) && addressIn(gateway, f));
    if (usable.length === 0)
      refuse(where, `${about}: ${node} and ${peer} have no addresses of that family in common on ${member.endpoint}`);
    for (const f of usable)
      routes.push({ destination, via: withoutPrefix(addressIn(gateway, f)!), device: member.ifname, ...metricOf(route) });
  }
  // Two routes to one place must differ in metric: the kernel keeps one route per destination and metric
  // (unset is 0 for IPv4, 1024 for IPv6, and IPv6 stores 0 as 1024).
  const effectiveMetric = (r: RoutePlan) => (isIP(r.via) === 6 ? r.metric || 1024 : (r.metric ?? 0));
  const keys = routes.map((r) => `${r.destination} ${isIP(r.via)} ${effectiveMetric(r)}`);
  const twice = routes.find((_r, i) => keys.indexOf(keys[i]) !== i);
  if (twice)
    refuse(
      where,
      `two routes to ${twice.destination} (IPv${isIP(twice.via)}) with metric ${effectiveMetric(twice)} (give one another metric)`,
    );
  return routes;
}
