/** Prints schema.json: `npm run schema` (after `npm run build`). */
import { packageSchema } from "./schema";

const { version } = require("../../package.json") as { version: string };
process.stdout.write(`${JSON.stringify(packageSchema(version), null, 2)}\n`);
