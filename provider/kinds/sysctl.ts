import { z } from "zod";
import { namespaceName } from "../fields";
import { Argv, Host, inNamespace } from "../host";
import { namespaceGone } from "../iproute";
import { CommandFailedError } from "../errors";
import { defineKind } from "../kind";

/** sysctl prints multi-value settings separated by tabs; compare with single spaces. */
const normalize = (value: string) => value.trim().split(/\s+/).join(" ");

export const sysctlReadArgv = (key: string, namespace?: string): Argv => inNamespace(namespace, ["sysctl", "-n", key]);
export const sysctlWriteArgv = (key: string, value: string, namespace?: string): Argv =>
  inNamespace(namespace, ["sysctl", "-q", "-w", `${key}=${value}`]);

async function readValue(host: Host, key: string, namespace?: string): Promise<string | undefined> {
  const result = await host.run(sysctlReadArgv(key, namespace), { allowFailure: true });
  if (result.exitCode === 0) return normalize(result.stdout);
  // The namespace is gone, or the key is (per-interface keys vanish with their interface).
  if (namespaceGone(result) || /cannot stat/.test(result.stderr)) return undefined;
  throw new CommandFailedError(host.label, result);
}

export const sysctlKind = defineKind({
  name: "Sysctl",
  description:
    "A kernel setting such as net.ipv4.ip_forward, set while the resource exists; destroy restores the value it had before.",
  shape: {
    key: z
      .string()
      .regex(/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/, { message: "must be a dotted sysctl key, e.g. net.ipv4.ip_forward" })
      .describe("Dotted key, e.g. net.ipv4.ip_forward."),
    value: z
      .string()
      .regex(/^[A-Za-z0-9_.:\s-]{1,256}$/, { message: "may hold letters, digits, spaces and _ . : -" })
      .transform(normalize)
      .describe('Value to set, e.g. "1".'),
    namespace: namespaceName.optional().describe("Namespace whose setting this is (net.* settings are per namespace)."),
  },
  replaceOn: ["key", "namespace"],
  outputs: { previous: z.string().describe("The value before this resource set it; restored on destroy.") },
  adoptable: false,
  async create(host, spec) {
    const previous = await readValue(host, spec.key, spec.namespace);
    if (previous === undefined) {
      throw new Error(`${host.label}: no sysctl ${spec.key}${spec.namespace ? ` in namespace "${spec.namespace}"` : ""}`);
    }
    if (previous !== spec.value) await host.run(sysctlWriteArgv(spec.key, spec.value, spec.namespace));
    return { id: `${spec.namespace ?? ""}/${spec.key}`, observed: { value: await readValue(host, spec.key, spec.namespace), previous } };
  },
  async read(host, _id, olds) {
    const value = await readValue(host, olds.key as string, olds.namespace as string | undefined);
    return value === undefined ? undefined : { value };
  },
  async update(host, _id, _olds, news) {
    await host.run(sysctlWriteArgv(news.key, news.value, news.namespace));
    return { value: await readValue(host, news.key, news.namespace) };
  },
  async delete(host, _id, olds) {
    const namespace = olds.namespace as string | undefined;
    const current = await readValue(host, olds.key as string, namespace);
    if (current === undefined || olds.previous === undefined || current === olds.previous) return;
    await host.run(sysctlWriteArgv(olds.key as string, olds.previous as string, namespace));
  },
});
