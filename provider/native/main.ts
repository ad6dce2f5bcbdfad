/** `pulumi-resource-netns`: the engine starts it with its own address and talks gRPC to it. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { constructLab } from "../../sdk/lab/construct";
import { exitWhenEngineGone } from "../engineWatch";
import { typeToken } from "../kind";
import { NativeProvider } from "./provider";
import { serve } from "./serve";

const root = join(__dirname, "..", "..", "..");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

exitWhenEngineGone(process.argv.slice(2));
serve(
  new NativeProvider(version, readFileSync(join(root, "schema.json"), "utf8"), { [typeToken("Lab")]: constructLab }),
  process.argv.slice(2),
).catch((err: unknown) => {
  process.stderr.write(`pulumi-resource-netns: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
