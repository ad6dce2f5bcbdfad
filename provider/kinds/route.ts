import { isIP } from "node:net";
import { z } from "zod";
import { inNamespaceWords, partlyMade } from "../errors";
import { canonicalCidr, interfaceName, ipAddress, namespaceName, networkCidr, parseCidr } from "../fields";
import { Argv, Host, inNamespace, inOneStep } from "../host";
import { runUnlessGone } from "../iproute";
import { defineKind, neverCollides, Observed, Props, splitNamespace, SUSPENDED } from "../kind";
import {
  mayTakeOver,
  networkFromRecordName,
  objectOwner,
  ownerRecordPath,
  ownerRecords,
  recordedTag,
  removeOwnerRecordArgvs,
  takenOver,
  writeOwnerRecordArgvs,
} from "../owner";

/** Where a route records its owner (owner.ts): by the kernel's identity of it, as the id names it. */
export const recordPath = (spec: RouteSpec) =>
  ownerRecordPath("route", spec.namespace, `ipv${routeFamily(spec)}`, spec.destination, String(effectiveMetric(spec)));

type Family = 4 | 6;

interface RouteSpec {
  destination: string;
  family?: Family;
  via?: string;
  device?: string;
  source?: string;
  metric?: number;
  namespace?: string;
}

/** Given, else the destination's, else the gateway's; a default route with only a device is IPv4. */
export function routeFamily(spec: Pick<RouteSpec, "destination" | "family" | "via">): Family {
  if (spec.family) return spec.family;
  if (spec.destination !== "default") return parseCidr(spec.destination)!.family;
  return spec.via && isIP(spec.via) === 6 ? 6 : 4;
}

/** The kernel's metric when none is given: 0 for IPv4; IPv6 has no metric 0 and stores 1024 instead. */
const IPV6_DEFAULT_METRIC = 1024;
const effectiveMetric = (spec: RouteSpec) => (routeFamily(spec) === 6 ? spec.metric || IPV6_DEFAULT_METRIC : (spec.metric ?? 0));

/**
 * What an import id NAMESPACE/DESTINATION/METRIC names. "default" is IPv4's default route, as for `ip route`;
 * IPv6's is "::/0" (create's ids spell both "default").
 */
export function routeIdentity(id: string): Props | undefined {
  const parts = splitNamespace(id);
  const slash = parts ? parts.rest.lastIndexOf("/") : -1;
  if (!parts || slash <= 0 || !/^\d+$/.test(parts.rest.slice(slash + 1))) return undefined;
  const destination = parts.rest.slice(0, slash);
  const everything = parseCidr(destination)?.prefix === 0;
  return {
    namespace: parts.namespace,
    destination: everything ? "default" : destination,
    ...(everything ? { family: parseCidr(destination)!.family } : {}),
    metric: Number(parts.rest.slice(slash + 1)),
  };
}

export function routeArgv(verb: "add" | "replace" | "del", spec: RouteSpec): Argv {
  const argv = ["ip", `-${routeFamily(spec)}`, "route", verb, spec.destination];
  if (spec.via) argv.push("via", spec.via);
  if (spec.device) argv.push("dev", spec.device);
  if (spec.source) argv.push("src", spec.source);
  if (spec.metric !== undefined) argv.push("metric", String(spec.metric));
  return inNamespace(spec.namespace, argv);
}

/** Only the routes to exactly this destination: the kernel still walks the table, but the output stays small. */
function routeShowArgv(spec: RouteSpec): Argv {
  return inNamespace(spec.namespace, ["ip", `-${routeFamily(spec)}`, "-j", "route", "show", "exact", spec.destination, "table", "main"]);
}

export interface RouteEntry {
  destination: string;
  via?: string;
  device?: string;
  source?: string;
  metric: number;
}

export function parseRoutes(stdout: string, family: Family): RouteEntry[] {
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
  const result = await runUnlessGone(host, routeShowArgv(spec), { readOnly: true });
  if (!result) return undefined;
  // Specs stored before check canonicalised them may still spell the destination differently.
  const destination = spec.destination === "default" ? "default" : canonicalCidr(spec.destination);
  return parseRoutes(result.stdout, routeFamily(spec)).find((r) => r.destination === destination && r.metric === effectiveMetric(spec));
}

const observed = (route: RouteEntry, family: Family) => ({
  family,
  via: route.via,
  device: route.device,
  source: route.source,
  metric: route.metric,
});

async function readBack(host: Host, spec: RouteSpec) {
  const route = await find(host, spec);
  if (!route) throw new Error(`${host.label}: the route to ${spec.destination} was set but cannot be read back`);
  return observed(route, routeFamily(spec));
}

/** The route and its owner record. */
async function removeRoute(host: Host, spec: RouteSpec, owner: string | undefined): Promise<void> {
  await runUnlessGone(host, routeArgv("del", spec));
  for (const argv of removeOwnerRecordArgvs(recordPath(spec), owner)) await host.run(argv);
}

/** Adds the route with its owner record, or takes over one that is there (see mayTakeOver); all or nothing. */
async function install(host: Host, spec: RouteSpec, adopt: boolean, owner: string | undefined): Promise<Observed> {
  const existing = await find(host, spec);
  const record = recordPath(spec);
  const what =
    existing && `a route to ${spec.destination} (metric ${existing.metric}, via ${existing.via ?? "-"} dev ${existing.device ?? "-"})`;
  const { ours } = existing ? mayTakeOver(host.label, what!, await recordedTag(host, record), owner, adopt) : { ours: false };
  // Taking one over sets the existing route to what the program says, atomically.
  await host.run(inOneStep(routeArgv(existing ? "replace" : "add", spec), ...writeOwnerRecordArgvs(record, owner)));
  try {
    return await readBack(host, spec);
  } catch (err) {
    // All or nothing: a route that cannot be read back would stay on the host, unknown to state.
    if (!existing || ours) {
      await removeRoute(host, spec, owner).catch((cleanup) => {
        throw partlyMade(err, `the route to ${spec.destination}`, cleanup);
      });
    }
    throw err;
  }
}

export const routeKind = defineKind({
  name: "Route",
  description: "A route in the main table (`ip route add`), including the default route, in a namespace or on the host.",
  shape: {
    destination: z
      .union([z.literal("default"), networkCidr])
      .describe('"default" or a network with prefix length, e.g. 10.0.0.0/8 (0.0.0.0/0 and ::/0 become "default").'),
    family: z
      .literal([4, 6])
      .optional()
      .describe("IP family, 4 or 6. Needed only for a default route without `via`; otherwise taken from the destination or gateway."),
    via: ipAddress.optional().describe("Gateway address."),
    device: interfaceName.optional().describe("Outgoing interface."),
    source: ipAddress
      .optional()
      .describe("Preferred source address (`src`). Naming the interface's address also ties the route to it: change one, replace both."),
    metric: z
      .number()
      .int()
      .min(0)
      .max(4294967295)
      .optional()
      .describe("Route metric (priority); part of the route's identity. IPv6 stores 0 as 1024, and so does this."),
    namespace: namespaceName.optional().describe("Namespace of the routing table; the host's own when unset."),
    suspended: z.boolean().optional().describe(SUSPENDED),
  },
  refine(spec, ctx) {
    if (!spec.via && !spec.device) ctx.addIssue({ code: "custom", path: ["via"], message: "a route needs `via`, `device`, or both" });
    const destinationFamily = spec.destination === "default" ? undefined : parseCidr(spec.destination)!.family;
    if (spec.family && destinationFamily && spec.family !== destinationFamily) {
      ctx.addIssue({
        code: "custom",
        path: ["family"],
        message: `the destination ${spec.destination} is IPv${destinationFamily}: set family ${destinationFamily} or leave it unset`,
      });
    }
    if (spec.via && destinationFamily && isIP(spec.via) !== destinationFamily) {
      ctx.addIssue({ code: "custom", path: ["via"], message: "the gateway and the destination must be the same IP family" });
    }
    if (spec.via && !destinationFamily && spec.family && isIP(spec.via) !== spec.family) {
      ctx.addIssue({
        code: "custom",
        path: ["family"],
        message: `the gateway ${spec.via} is IPv${isIP(spec.via)}: set family ${isIP(spec.via)} or leave it unset`,
      });
    }
    if (spec.source && isIP(spec.source) !== routeFamily(spec)) {
      ctx.addIssue({ code: "custom", path: ["source"], message: "the source address and the route must be the same IP family" });
    }
  },
  canonical(spec) {
    const family = routeFamily(spec);
    const everything = spec.destination !== "default" && parseCidr(spec.destination)!.prefix === 0;
    return {
      ...spec,
      destination: everything ? "default" : spec.destination,
      family,
      ...(family === 6 && spec.metric === 0 && { metric: IPV6_DEFAULT_METRIC }),
    };
  },
  // The kernel knows a route by table, destination and metric; `update` moves it to a new metric.
  replaceOn: ["destination", "family", "namespace"],
  collides: neverCollides,
  adoptable: true,
  importing: {
    idForm: "[NAMESPACE]/DESTINATION/METRIC (DESTINATION: a network, default for IPv4's default route, ::/0 for IPv6's)",
    identify: routeIdentity,
  },
  async create(host, spec, adopt, owner) {
    const id = `${spec.namespace ?? ""}/${spec.destination}/${effectiveMetric(spec)}`;
    return { id, observed: spec.suspended ? {} : await install(host, spec, adopt, owner) };
  },
  async read(host, _id, olds) {
    // The id never changes, but update may have moved the route to another metric: olds say where it is.
    const spec = olds as unknown as RouteSpec;
    if (olds.suspended) return {};
    const route = await find(host, spec);
    return route && observed(route, routeFamily(spec));
  },
  async update(host, _id, olds, news) {
    const owner = objectOwner(routeKind.replaceOn, olds);
    if (news.suspended) {
      await removeRoute(host, olds as unknown as RouteSpec, owner);
      return {};
    }
    // Back from suspended: made as create makes it, another's route of that name refused.
    if (olds.suspended) return install(host, news, false, owner);
    // `replace` swaps the route in one step: a gateway change on the route carrying this very SSH
    // session must never leave a moment without a route (delete-then-add would cut the session off).
    await host.run(routeArgv("replace", news));
    const oldMetric = effectiveMetric(olds as unknown as RouteSpec);
    if (oldMetric !== effectiveMetric(news)) {
      // Another metric is another route: the new one is in place, now the old one goes.
      await runUnlessGone(
        host,
        routeArgv("del", { destination: news.destination, family: news.family, namespace: news.namespace, metric: oldMetric }),
      );
      const moved = [
        ...writeOwnerRecordArgvs(recordPath(news), owner),
        ...removeOwnerRecordArgvs(recordPath(olds as unknown as RouteSpec), owner),
      ];
      if (moved.length > 0) await host.run(inOneStep(...moved));
    }
    return readBack(host, news);
  },
  // Outputs hold the route as last read back, metric included, so this names exactly that route.
  async delete(host, _id, olds) {
    const spec = olds as unknown as RouteSpec;
    if (takenOver(await recordedTag(host, recordPath(spec)), routeKind.replaceOn, olds)) return;
    await removeRoute(host, spec, olds.owner as string | undefined);
  },
  async tagged(_host, source) {
    return ownerRecords(await source.records(), "route").map(({ owner, namespace, names: [family, name, metric] }) => {
      const destination = networkFromRecordName(name);
      return {
        owner,
        id: `${namespace ?? ""}/${destination}/${metric}`,
        olds: { namespace, destination, family: Number(family.slice(3)), metric: Number(metric), owner },
        what: `route to ${destination} (metric ${metric})${inNamespaceWords(namespace)}`,
      };
    });
  },
});
