import { z } from "zod";
import { AlreadyExistsError } from "../errors";
import { namespaceName } from "../fields";
import type { Host } from "../host";
import { readLink, reconcileLink, runUnlessGone } from "../iproute";
import { defineKind } from "../kind";

export function parseNamespaces(stdout: string): string[] {
  return (JSON.parse(stdout.trim() || "[]") as { name: string }[]).map((n) => n.name);
}

async function namespaceExists(host: Host, name: string): Promise<boolean> {
  const result = await host.run(["ip", "-j", "netns", "list"]);
  return parseNamespaces(result.stdout).includes(name);
}

async function setLoopback(host: Host, name: string, up: boolean): Promise<void> {
  await reconcileLink(host, name, "lo", (await readLink(host, name, "lo")) ?? {}, { up });
}

async function observe(host: Host, name: string) {
  const lo = await readLink(host, name, "lo");
  return lo ? { loopbackUp: lo.up } : undefined;
}

export const namespaceKind = defineKind({
  name: "Namespace",
  description: "A named network namespace (`ip netns add`), with its loopback interface brought up.",
  shape: {
    name: namespaceName.describe("Namespace name, as in `ip netns add NAME`."),
    loopbackUp: z.boolean().default(true).describe("Bring the namespace's `lo` up."),
  },
  replaceOn: ["name"],
  adoptable: true,
  async create(host, spec, adopt) {
    const existed = await namespaceExists(host, spec.name);
    if (existed && !adopt) throw new AlreadyExistsError(host.label, `network namespace "${spec.name}"`);
    if (!existed) await host.run(["ip", "netns", "add", spec.name]);
    try {
      await setLoopback(host, spec.name, spec.loopbackUp);
      return { id: spec.name, observed: (await observe(host, spec.name))! };
    } catch (err) {
      if (!existed) await host.run(["ip", "netns", "del", spec.name], { allowFailure: true });
      throw err;
    }
  },
  async read(host, id) {
    if (!(await namespaceExists(host, id))) return undefined;
    return observe(host, id);
  },
  async update(host, id, olds, news) {
    await setLoopback(host, id, news.loopbackUp);
    return (await observe(host, id)) ?? {};
  },
  async delete(host, id) {
    await runUnlessGone(host, ["ip", "netns", "del", id]);
  },
});
