/**
 * The Pulumi package schema for every resource kind and the connection type, generated from the
 * same zod schemas that validate inputs, so the document cannot drift from the code.
 */
import { z } from "zod";
import { connection, PROVIDER_SECRETS, SECRET_FIELDS } from "../provider/connection";
import { COMMON_INPUTS, Kind, typeToken } from "../provider/kind";
import { kinds } from "../provider/kinds";
import { labSpec } from "../sdk/lab/spec";

type JsonSchema = {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
};

type Property = Record<string, unknown>;

const PACKAGE = "netns";
const pascal = (s: string) => s[0].toUpperCase() + s.slice(1);

/** Shared object types keep one name wherever they appear; others are named after their place. */
const SHARED_TYPES: Record<string, string> = { connection: "Connection", proxy: "JumpHost" };

/** What an edit of a property does, from the kind's own diff rules; undefined for connection and adopt. */
type EditNote = (path: string, js: JsonSchema, required: boolean) => string | undefined;

function editNoteFor(kind: Kind<any>): EditNote {
  return (path, js, required) => {
    if (!Object.keys(kind.shape).includes(path.split(".")[0]) || js.type === "object") return undefined;
    if (kind.replaceOn.some((r) => r === path || path.startsWith(`${r}.`))) {
      return required ? "Changing it replaces the resource." : "Changing or unsetting it replaces the resource.";
    }
    const reset = kind.resetTo?.[path];
    if (reset !== undefined) return `Changed in place; unsetting it goes back to ${reset === null ? "the kernel's default" : reset}.`;
    if (js.default !== undefined) return "Changed in place; unsetting it goes back to the default.";
    return required ? "Changed in place." : "Changed in place; unsetting it leaves it to the kernel's default (for most: none).";
  };
}

function property(
  js: JsonSchema,
  name: string,
  typeName: string,
  types: Record<string, unknown>,
  note?: EditNote,
  path = name,
  required = false,
): Property {
  const spec: Property = {};
  const edit = note?.(path, js, required);
  if (js.description) spec.description = edit ? `${js.description} ${edit}` : js.description;
  // Pulumi's schema takes a default only of a primitive type (gen-sdk and `pulumi import` refuse the package otherwise).
  if (js.default !== undefined && js.default !== null && typeof js.default !== "object") spec.default = js.default;
  else if (js.default !== undefined && js.default !== null)
    spec.description = `${spec.description ?? ""} Default: \`${JSON.stringify(js.default)}\`.`.trim();
  if ((SECRET_FIELDS as readonly string[]).includes(name)) spec.secret = true;
  if (js.type === "object" && js.properties) {
    const token = `${PACKAGE}:index:${typeName}`;
    types[token] = { type: "object", ...objectSpec(js, typeName, types, note, path) };
    return { ...spec, $ref: `#/types/${token}` };
  }
  // A record (interface name → settings) is a map in Pulumi's schema.
  if (js.type === "object" && typeof js.additionalProperties === "object") {
    return { ...spec, type: "object", additionalProperties: property(js.additionalProperties, name, typeName, types, note, path) };
  }
  if (js.type === "array") return { ...spec, type: "array", items: property(js.items ?? {}, name, typeName, types) };
  // A value of one of several shapes (a LAN member: "node:if" or { endpoint, down }).
  if (js.anyOf && new Set(js.anyOf.map((option) => option.type)).size > 1) {
    return { ...spec, oneOf: js.anyOf.map((option) => property(option, name, typeName, types, note, path)) };
  }
  if (js.anyOf || js.enum || js.const !== undefined) {
    const choices = (js.anyOf ?? []).map((c) => c.const).filter((c) => c !== undefined);
    const allowed = [...(js.enum ?? []), ...choices];
    if (allowed.length > 0 && !spec.description?.toString().includes(String(allowed[0]))) {
      spec.description = `${spec.description ?? ""} One of: ${allowed.join(", ")}.`.trim();
    }
    return { ...spec, type: js.type ?? js.anyOf?.[0]?.type ?? "string" };
  }
  return { ...spec, type: js.type ?? "string" };
}

function objectSpec(js: JsonSchema, typeName: string, types: Record<string, unknown>, note?: EditNote, path?: string) {
  const properties = Object.fromEntries(
    Object.entries(js.properties ?? {}).map(([key, value]) => [
      key,
      property(
        value,
        key,
        SHARED_TYPES[key] ?? `${typeName}${pascal(key)}`,
        types,
        note,
        path ? `${path}.${key}` : key,
        (js.required ?? []).includes(key),
      ),
    ]),
  );
  return { properties, required: js.required ?? [] };
}

/** What the provider adds to every resource (its connection, the owner from the URN): not a resource's input. */
const withoutCommonInputs = (js: JsonSchema): JsonSchema => ({
  ...js,
  properties: Object.fromEntries(Object.entries(js.properties ?? {}).filter(([key]) => !(key in COMMON_INPUTS))),
  required: (js.required ?? []).filter((key) => !(key in COMMON_INPUTS)),
});

/**
 * The Lab as a component for other languages (the native provider's construct): its topology as
 * sdk/lab/spec.ts checks it, each host a connection, and its outputs.
 */
function labComponent(types: Record<string, unknown>) {
  const js = z.toJSONSchema(labSpec, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const hosts = {
    type: "object",
    description: "Host name (as nodes refer to it) → its SSH connection.",
    additionalProperties: z.toJSONSchema(connection, { io: "input" }) as JsonSchema,
  };
  const input = objectSpec({ ...js, properties: { ...js.properties, hosts } }, "Lab", types);
  const text = (description: string) => ({ type: "string", description });
  const outputs = {
    addresses: {
      type: "object",
      additionalProperties: { type: "object", additionalProperties: { type: "array", items: { type: "string" } } },
      description: "Node → interface → addresses with prefix length.",
    },
    vnis: { type: "object", additionalProperties: { type: "integer" }, description: "Segment (link or LAN across hosts) → VNI." },
    allocations: {
      type: "object",
      additionalProperties: { $ref: "pulumi.json#/Any" },
      description: "Every subnet, address and VNI; give it as `previous` to a new stack of this lab to keep them.",
    },
    topologyDot: text("The topology as Graphviz DOT."),
    topologyMermaid: text("The topology as a Mermaid flowchart."),
  };
  return {
    isComponent: true,
    description:
      "A lab topology over one or more hosts (nodes, links, LANs, services, expectations) as one component; see the README's Lab section.",
    inputProperties: input.properties,
    requiredInputs: input.required,
    properties: outputs,
    required: Object.keys(outputs),
  };
}

/** How `pulumi import` names a resource of the kind (on the native provider), or why it cannot. */
function importNote(kind: Kind<any>): string {
  return "idForm" in kind.importing
    ? `Import (native provider): \`pulumi import ${typeToken(kind.name)} NAME ID\`, ID being ${kind.importing.idForm}.`
    : `Import: not possible, as ${kind.importing.refused}`;
}

export function packageSchema(version: string): Record<string, unknown> {
  const types: Record<string, unknown> = {};
  const resources: Record<string, unknown> = {};
  const config = objectSpec(z.toJSONSchema(connection, { io: "input" }) as JsonSchema, "Provider", types);
  for (const key of PROVIDER_SECRETS) (config.properties[key] as Property).secret = true;
  for (const kind of kinds) {
    const inputs = withoutCommonInputs(z.toJSONSchema(kind.inputs, { io: "input", unrepresentable: "any" }) as JsonSchema);
    const input = objectSpec(inputs, kind.name, types, editNoteFor(kind));
    const computed = z.toJSONSchema(z.object(kind.outputs ?? {}), { unrepresentable: "any" }) as JsonSchema;
    const output = objectSpec(computed, kind.name, types);
    resources[`${PACKAGE}:index:${kind.name}`] = {
      description: `${kind.description}\n\n${importNote(kind)}\n\nIn the TypeScript dynamic classes its type token is \`pulumi-nodejs:dynamic/netns:${kind.name}\` and it takes \`connection\`.`,
      inputProperties: input.properties,
      requiredInputs: input.required,
      properties: { ...input.properties, ...output.properties },
      required: [...input.required, ...Object.keys(output.properties)].filter((key) => key !== "adopt"),
    };
  }
  resources[`${PACKAGE}:index:Lab`] = labComponent(types);
  return {
    name: PACKAGE,
    displayName: "pulumi-netns",
    version,
    description: "Linux network namespaces, veth pairs, bridges, addresses, routes, sysctls and iptables NAT, managed over SSH.",
    keywords: ["pulumi", "linux", "netns", "network-namespace", "iptables", "category/network"],
    license: "Apache-2.0",
    language: {
      nodejs: { packageName: "pulumi-netns" },
      python: { packageName: "pulumi_netns", requires: { pulumi: ">=3.0.0,<4.0.0" }, respectSchemaVersion: true },
    },
    // The default provider reads these from stack config (netns:host, netns:privateKey, ...).
    // No default is required: a program whose resources all name their provider leaves the default one without a host.
    config: { variables: config.properties, defaults: [] },
    provider: {
      description: "The SSH connection to one host; every resource given this provider is made there. Credentials are secrets.",
      inputProperties: config.properties,
      requiredInputs: config.required,
      properties: config.properties,
      required: config.required,
    },
    types: Object.fromEntries(Object.entries(types).sort(([a], [b]) => a.localeCompare(b))),
    resources,
  };
}

/** The resource reference (docs/reference.md, whole), rendered from the same schema. */
export function referenceDocument(schema: Record<string, any>): string {
  const typeName = (p: Property): string =>
    p.$ref
      ? `[${String(p.$ref).split(":").pop()}](#${String(p.$ref).split(":").pop()!.toLowerCase()})`
      : p.type === "array"
        ? `${typeName(p.items as Property)}[]`
        : String(p.type);
  const table = (properties: Record<string, Property>, required: string[]) =>
    [
      "| property | type | required / default | description |",
      "|---|---|---|---|",
      ...Object.entries(properties).map(([name, p]) => {
        const need = required.includes(name) ? "required" : p.default !== undefined ? `\`${JSON.stringify(p.default)}\`` : "";
        const text = String(p.description ?? "")
          .replace(/\|/g, "\\|")
          .replace(/\n/g, " ");
        return `| \`${name}\` | ${typeName(p)} | ${need} | ${p.secret ? "**secret.** " : ""}${text} |`;
      }),
    ].join("\n");
  // The resources and the provider, and the types they use; the Lab component is described in the README and docs/design.md.
  const plain = Object.entries(schema.resources as Record<string, any>).filter(([, resource]) => !resource.isComponent);
  const used = new Set<string>();
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (typeof value !== "object" || value === null) return;
    for (const [key, field] of Object.entries(value)) {
      const token = key === "$ref" && typeof field === "string" ? field.replace("#/types/", "") : undefined;
      if (token && !used.has(token)) {
        used.add(token);
        walk(schema.types[token]);
      }
      walk(field);
    }
  };
  walk([plain, schema.provider]);
  const name = (token: string) => token.split(":").pop()!;
  const link = (token: string) => `[${name(token)}](#${name(token).toLowerCase()})`;
  const typeTokens = Object.keys(schema.types as Record<string, any>).filter((token) => used.has(token));
  const resources = plain.map(([token, resource]) => {
    const outputs = Object.keys(resource.properties).filter((key) => !(key in resource.inputProperties));
    const [summary, importing] = String(resource.description).split("\n\n");
    return (
      `### ${name(token)}\n\n${summary}\n\n${importing}\n\n${table(resource.inputProperties, resource.requiredInputs)}` +
      (outputs.length
        ? `\n\nOutputs besides the inputs: ${outputs.map((o) => `\`${o}\` (${resource.properties[o].description})`).join("; ")}.`
        : "")
    );
  });
  const types = typeTokens.map((token) => `### ${name(token)}\n\n${table(schema.types[token].properties, schema.types[token].required)}`);
  return (
    [
      "# Resource reference",
      "> Generated by `npm run schema` (after `npm run build`) from the zod schemas that validate inputs; do not edit it by hand. " +
        "`test/unit/schema.test.ts` fails when it is stale.",
      "`schema.json` is the Pulumi package schema for every resource, generated from the same schemas; the native provider serves it, " +
        "and the Python SDK is generated from it. Type tokens are `netns:index:<Name>` on the native provider and " +
        "`pulumi-nodejs:dynamic/netns:<Name>` in the TypeScript dynamic classes, where every resource also takes `connection` " +
        "(the [Provider](#provider)'s properties). The `Lab` component is described in the README's [Lab](../README.md#lab) section " +
        "and in [design.md](design.md#the-lab).",
      "## Contents",
      [
        `- [Resources](#resources): ${plain.map(([token]) => link(token)).join(", ")}`,
        "- [Provider](#provider): the SSH connection to one host",
        `- [Types](#types): ${typeTokens.map(link).join(", ")}`,
      ].join("\n"),
      "## Resources",
      ...resources,
      `## Provider\n\n${schema.provider.description} The same properties are \`connection\` of every resource in the ` +
        `TypeScript dynamic classes, and \`netns:KEY\` in stack config for the default provider.\n\n` +
        table(schema.provider.inputProperties, schema.provider.requiredInputs),
      "## Types",
      ...types,
    ].join("\n\n") + "\n"
  );
}
