/**
 * A provider process (the dynamic provider host, or pulumi-resource-netns) serves the engine until it is
 * killed, and nothing kills it when the engine dies without shutting it down (a SIGKILLed `pulumi up`):
 * it would live on, holding SSH connections. So it exits once the engine's gRPC address refuses connections.
 */
import { connect } from "node:net";
import { closeAllHosts } from "./ssh/pool";

const CHECK_EVERY_MS = 1000;

/** `args` are the process's arguments: flags (`--logtostderr`, `-v=9`, `--tracing URL`), then the engine's address. */
export function exitWhenEngineGone(args: string[]): void {
  const match = /^(.+):(\d+)$/.exec(args[args.length - 1] ?? "");
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
