/** Writes schema.json and the README's resource reference: `npm run schema` (after `npm run build`). */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageSchema, referenceMarkdown, withReference } from "./schema";

const root = join(__dirname, "..", "..");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const schema = packageSchema(version);
writeFileSync(join(root, "schema.json"), `${JSON.stringify(schema, null, 2)}\n`);
const readme = join(root, "README.md");
writeFileSync(readme, withReference(readFileSync(readme, "utf8"), referenceMarkdown(schema)));
