/** schema.json and docs/reference.md are generated from the code; this fails when either is stale. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { kinds } from "../../provider/kinds";
import { packageSchema, referenceDocument } from "../../tools/schema";

const root = join(__dirname, "..", "..");

test("the committed schema.json and docs/reference.md match the code (regenerate: npm run build && npm run schema)", () => {
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const schema = packageSchema(version);
  expect(JSON.parse(readFileSync(join(root, "schema.json"), "utf8"))).toEqual(schema);
  expect(readFileSync(join(root, "docs", "reference.md"), "utf8")).toBe(referenceDocument(schema));
});

test("every kind is a resource; the connection is the provider's, its credentials secret; required inputs are the ones without defaults", () => {
  const schema = packageSchema("0.0.0") as any;
  expect(Object.keys(schema.resources).sort()).toEqual([...kinds.map((k) => `netns:index:${k.name}`), "netns:index:Lab"].sort());
  expect(schema.resources["netns:index:Lab"].isComponent).toBe(true);
  // A LAN member is "node:if" or { endpoint, down }.
  expect(schema.types["netns:index:LabLans"].properties.members.items.oneOf.map((t: any) => t.type ?? t.$ref)).toEqual([
    "string",
    "#/types/netns:index:LabLansMembers",
  ]);
  const connection = schema.provider.inputProperties;
  for (const secret of ["privateKey", "password", "passphrase"]) expect(connection[secret].secret).toBe(true);
  expect(connection.host.secret).toBeUndefined();
  expect(schema.provider.requiredInputs).toEqual(["host"]);
  expect(schema.config.variables).toEqual(connection);
  for (const resource of Object.values<any>(schema.resources).filter((r) => !r.isComponent))
    expect(Object.keys(resource.inputProperties)).not.toContain("connection");
  expect(schema.resources["netns:index:PortForward"].requiredInputs.sort()).toEqual(["port", "protocol", "to"]);
  expect(schema.resources["netns:index:Sysctl"].properties.previous.type).toBe("string");
});
