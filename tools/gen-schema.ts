/** Writes schema.json and docs/reference.md, both generated from the code: `npm run schema` (after `npm run build`). */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageSchema, referenceDocument } from "./schema";

const root = join(__dirname, "..", "..");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const schema = packageSchema(version);
writeFileSync(join(root, "schema.json"), `${JSON.stringify(schema, null, 2)}\n`);
mkdirSync(join(root, "docs"), { recursive: true });
writeFileSync(join(root, "docs", "reference.md"), referenceDocument(schema));
