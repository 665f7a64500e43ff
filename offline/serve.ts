/**
 * `cache serve`: the bundle over HTTP, laid out like Pulumi's release server
 * (`/plugins/<archive>`, `/sdk/<CLI archive>`), so that
 * - the CLI downloads the locked plugins from it when
 *   `PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES` points there (format
 *   `regexp=URL[,regexp=URL]`; the regexp is matched against the plugin's
 *   source URL, which for Pulumi's own plugins is
 *   `github://api.github.com/pulumi/pulumi-<name>`; the CLI then asks for
 *   `<URL>/pulumi-<kind>-<name>-v<version>-<os>-<arch>.tar.gz`);
 * - another staging machine can `cache fetch --base-url http://host:port`.
 * Only files listed in the manifest are served (GET and HEAD, with Range).
 */
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { MANIFEST, Manifest, bundlePath, readManifest } from "./bundle";
import { shQuote } from "./display";
import { OfflineError } from "./errors";
import { PluginsLock } from "./lock";

/** Source URL the CLI matches overrides against for a plugin (its PluginDownloadURL, or Pulumi's GitHub org). */
export function pluginSourceUrl(plugin: { name: string; server: string | null }): string {
  return plugin.server ?? `github://api.github.com/pulumi/pulumi-${plugin.name}`;
}

/** Escapes text for an RE2 (Go) regular expression. */
export function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, "\\$&");
}

/**
 * The override value that sends exactly the locked plugins to `url`.
 * The CLI splits the value on `,` and each pair on `=`, so neither may occur
 * inside the regexp or the URL.
 */
export function pluginOverride(lock: Pick<PluginsLock, "plugins">, url: string): string {
  const sources = [...new Set(lock.plugins.map(pluginSourceUrl))].sort();
  if (!sources.length) throw new OfflineError("the lock names no plugin to serve");
  const regexp = `^(?:${sources.map(escapeRegExp).join("|")})$`;
  for (const [what, text] of [
    ["a plugin source URL", regexp],
    ["the server URL", url],
  ] as const) {
    if (/[,=]/.test(text))
      throw new OfflineError(
        `${what} contains ',' or '=', which PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES cannot carry: ${text}`,
      );
  }
  return `${regexp}=${url}`;
}

/** A POSIX shell line that sets the variable (single-quoted: the regexp holds $ and |). */
export function envLine(name: string, value: string): string {
  return `export ${name}=${shQuote(value)}`;
}

export interface BundleServer {
  server: http.Server;
  /** http://host:port of the server as reachable by clients. */
  url: string;
  close(): Promise<void>;
}

/** URL path → manifest path: `/plugins/x` and `/sdk/x` (the release server's layout) plus every manifest path as is. */
export function routes(manifest: Manifest): Map<string, string> {
  const m = new Map<string, string>();
  m.set(`/${MANIFEST}`, MANIFEST);
  for (const f of manifest.files) {
    if (f.role === "npm-cache") continue;
    m.set(`/${f.path}`, f.path);
    if (f.role === "cli") m.set(`/sdk/${f.path.slice("cli/".length)}`, f.path);
  }
  return m;
}

export async function startBundleServer(opts: {
  bundleDir: string;
  host: string;
  port: number;
  publicHost?: string;
  log?: (line: string) => void;
}): Promise<BundleServer> {
  const manifest = readManifest(opts.bundleDir);
  const table = routes(manifest);
  const server = http.createServer((req, res) => {
    const send = (status: number, text: string) => {
      res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(req.method === "HEAD" ? undefined : `${text}\n`);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "only GET and HEAD");
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://bundle").pathname);
    } catch {
      return send(400, "bad path");
    }
    const rel = table.get(pathname);
    opts.log?.(`${req.method} ${pathname} ${rel ? "" : "404"}`.trim());
    if (!rel) return send(404, `not in the bundle: ${pathname}`);
    const file = bundlePath(opts.bundleDir, rel);
    let size: number;
    try {
      size = fs.statSync(file).size;
    } catch {
      return send(404, `listed in the manifest but missing: ${rel}`);
    }
    const headers: http.OutgoingHttpHeaders = {
      "Content-Type": "application/octet-stream",
      "Accept-Ranges": "bytes",
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(req.headers.range ?? ""));
    if (req.headers.range && range) {
      if (range[1] === "") {
        start = Math.max(0, size - Number(range[2]));
      } else {
        start = Number(range[1]);
        if (range[2] !== "") end = Math.min(end, Number(range[2]));
      }
      if (start >= size || start > end) {
        res.writeHead(416, { "Content-Range": `bytes */${size}` });
        return res.end();
      }
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["Content-Length"] = size === 0 ? 0 : end - start + 1;
    res.writeHead(status, headers);
    if (req.method === "HEAD" || size === 0) return res.end();
    fs.createReadStream(file, { start, end }).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.publicHost ?? opts.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return {
    server,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
