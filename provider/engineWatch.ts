/**
 * The dynamic provider host serves the engine until it is killed, and nothing kills it when the engine
 * dies without shutting it down (a SIGKILLed `pulumi up`): it would live on, holding SSH connections.
 * So, in that host only, it exits once the engine's gRPC address refuses connections.
 */
import { connect } from "node:net";
import { closeAllHosts } from "./ssh/pool";

const CHECK_EVERY_MS = 1000;

/** The host's entry script; it takes the engine's address (127.0.0.1:PORT) as its first argument. */
const DYNAMIC_PROVIDER_HOST = /[\\/]cmd[\\/]dynamic-provider[\\/]index\.js$/;

export function exitWhenEngineGone(): void {
  if (!require.main || !DYNAMIC_PROVIDER_HOST.test(require.main.filename)) return;
  const match = /^(.+):(\d+)$/.exec(process.argv[2] ?? "");
  if (!match) return;
  const [, host, port] = match;
  const timer = setInterval(() => {
    const probe = connect({ host, port: Number(port) });
    probe.once("connect", () => probe.destroy());
    probe.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "ECONNREFUSED") return;
      closeAllHosts();
      process.exit(0);
    });
  }, CHECK_EVERY_MS);
  timer.unref();
}
