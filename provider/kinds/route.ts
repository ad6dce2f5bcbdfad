import { isIP } from "node:net";
import { z } from "zod";
import { AlreadyExistsError } from "../errors";
import { interfaceName, ipAddress, namespaceName, networkCidr, parseCidr } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { runUnlessGone } from "../iproute";
import { defineKind } from "../kind";
import { canonicalCidr } from "./address";

interface RouteSpec {
  destination: string;
  via?: string;
  device?: string;
  source?: string;
  metric?: number;
  namespace?: string;
}

export function routeFamily(spec: Pick<RouteSpec, "destination" | "via">): 4 | 6 {
  if (spec.destination !== "default") return parseCidr(spec.destination)!.family;
  return spec.via && isIP(spec.via) === 6 ? 6 : 4;
}

/** The kernel's metric when none is given: 0 for IPv4, 1024 for IPv6. */
const defaultMetric = (spec: RouteSpec) => spec.metric ?? (routeFamily(spec) === 6 ? 1024 : 0);

export function routeArgv(verb: "add" | "replace" | "del", spec: RouteSpec): Argv {
  const argv = ["ip", `-${routeFamily(spec)}`, "route", verb, spec.destination];
  if (spec.via) argv.push("via", spec.via);
  if (spec.device) argv.push("dev", spec.device);
  if (spec.source) argv.push("src", spec.source);
  if (spec.metric !== undefined) argv.push("metric", String(spec.metric));
  return inNamespace(spec.namespace, argv);
}

export interface RouteEntry {
  destination: string;
  via?: string;
  device?: string;
  source?: string;
  metric: number;
}

export function parseRoutes(stdout: string, family: 4 | 6): RouteEntry[] {
  const routes = JSON.parse(stdout.trim() || "[]") as { dst: string; gateway?: string; dev?: string; prefsrc?: string; metric?: number }[];
  return routes.map((r) => ({
    destination: r.dst === "default" ? "default" : canonicalCidr(r.dst.includes("/") ? r.dst : `${r.dst}/${family === 4 ? 32 : 128}`),
    via: r.gateway,
    device: r.dev,
    source: r.prefsrc,
    metric: r.metric ?? 0,
  }));
}

/** The main-table route with this destination and metric (the kernel's identity of a route). */
async function find(host: Host, spec: RouteSpec): Promise<RouteEntry | undefined> {
  const family = routeFamily(spec);
  const result = await runUnlessGone(host, inNamespace(spec.namespace, ["ip", `-${family}`, "-j", "route", "show", "table", "main"]));
  if (!result) return undefined;
  const destination = spec.destination === "default" ? "default" : canonicalCidr(spec.destination);
  return parseRoutes(result.stdout, family).find((r) => r.destination === destination && r.metric === defaultMetric(spec));
}

const observed = (route: RouteEntry) => ({ via: route.via, device: route.device, source: route.source, metric: route.metric });

export const routeKind = defineKind({
  name: "Route",
  description: "A route in the main table (`ip route add`), including the default route, in a namespace or on the host.",
  shape: {
    destination: z
      .union([z.literal("default"), networkCidr])
      .describe('"default" or a network with prefix length, e.g. 10.0.0.0/8.'),
    via: ipAddress.optional().describe("Gateway address."),
    device: interfaceName.optional().describe("Outgoing interface."),
    source: ipAddress
      .optional()
      .describe("Preferred source address (`src`). Naming the interface's address also ties the route to it: change one, replace both."),
    metric: z.number().int().min(0).max(4294967295).optional().describe("Route metric (priority)."),
    namespace: namespaceName.optional().describe("Namespace of the routing table; the host's own when unset."),
  },
  refine(spec, ctx) {
    if (!spec.via && !spec.device) ctx.addIssue({ code: "custom", path: ["via"], message: "a route needs `via`, `device`, or both" });
    if (spec.via && spec.destination !== "default" && isIP(spec.via) !== parseCidr(spec.destination)!.family) {
      ctx.addIssue({ code: "custom", path: ["via"], message: "the gateway and the destination must be the same IP family" });
    }
  },
  replaceOn: ["destination", "via", "device", "source", "metric", "namespace"],
  adoptable: true,
  async create(host, spec, adopt) {
    const existing = await find(host, spec);
    if (existing && !adopt) {
      throw new AlreadyExistsError(host.label, `a route to ${spec.destination} (metric ${existing.metric}, via ${existing.via ?? "-"} dev ${existing.device ?? "-"})`);
    }
    // Adopting sets the existing route to what the program says, atomically.
    await host.run(routeArgv(existing ? "replace" : "add", spec));
    const route = await find(host, spec);
    if (!route) throw new Error(`${host.label}: the route to ${spec.destination} was added but cannot be read back`);
    return { id: `${spec.namespace ?? ""}/${spec.destination}/${route.metric}`, observed: observed(route) };
  },
  async read(host, _id, olds) {
    const route = await find(host, olds as unknown as RouteSpec);
    return route && observed(route);
  },
  async update() {
    return {};
  },
  async delete(host, _id, olds) {
    // Outputs hold the route as last read back, metric included, so this names exactly that route.
    await runUnlessGone(host, routeArgv("del", olds as unknown as RouteSpec));
  },
});
