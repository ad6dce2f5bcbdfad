/**
 * Proof that a bridge lab works, with real traffic: pings between the namespaces and to the gateway,
 * a ping leaving the host (only masquerade brings the answer back), and a page served inside blue
 * fetched from another host through the port forward. Used by the tests and the demo.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestHost } from "./throwawayHosts";

export interface BridgeLabAddresses {
  red: string;
  blue: string;
  gateway: string;
}

async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ping(host: TestHost, namespace: string, target: string): string {
  const out = host.sh(["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "2", target], { timeoutMs: 15_000 });
  const summary = out.split("\n").find((l) => l.includes("packets transmitted")) ?? out;
  if (!summary.includes(" 1 received")) throw new Error(`${namespace} → ${target}: no answer\n${out}`);
  return `${namespace} → ${target}: ${summary.trim()}`;
}

/** Throws unless every check passes; returns one line of evidence per check. */
export async function proveBridgeLab(lab: TestHost, client: TestHost, ips: BridgeLabAddresses): Promise<string[]> {
  const proof = [ping(lab, "red", ips.blue), ping(lab, "blue", ips.gateway), ping(lab, "blue", client.address)];
  const www = mkdtempSync("/tmp/pnt-www-");
  const token = `served inside blue (${www.slice(-6)})`;
  writeFileSync(join(www, "index.html"), token);
  const server = lab.spawn([
    "ip",
    "netns",
    "exec",
    "blue",
    "/usr/bin/python3",
    "-m",
    "http.server",
    "80",
    "--bind",
    ips.blue,
    "--directory",
    www,
  ]);
  try {
    await waitFor(() => lab.sh(["ip", "netns", "exec", "blue", "ss", "-ltn"]).includes(`${ips.blue}:80`), "the web server in blue");
    const url = `http://${lab.address}:80/`;
    const page = client.sh(["curl", "-sS", "--max-time", "5", url], { timeoutMs: 10_000 });
    if (page !== token)
      throw new Error(`${url} from ${client.address} returned ${JSON.stringify(page)}, expected ${JSON.stringify(token)}`);
    proof.push(`${client.address} fetched ${url} → "${page}"`);
    // Port 80 elsewhere stays elsewhere: only traffic addressed to the host itself is forwarded.
    const passing = lab.sh(["ip", "netns", "exec", "red", "curl", "-sS", "--max-time", "5", `http://${client.address}:80/`], {
      allowFailure: true,
      timeoutMs: 10_000,
    });
    if (passing.includes(token)) throw new Error(`red → ${client.address}:80 was captured by the port forward`);
    proof.push(`red → ${client.address}:80 is not redirected into blue`);
  } finally {
    server.kill("SIGKILL");
    rmSync(www, { recursive: true, force: true });
  }
  return proof;
}
