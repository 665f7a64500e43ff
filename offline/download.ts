/**
 * Resumable download of one file over http(s) or from file://.
 *
 * Bytes go to `<dest>.part`; a later run asks the server for the rest with a
 * `Range` header and appends when it answers 206 (a 200 starts again from
 * zero). The finished file is renamed into place only when complete and, if
 * a sha256 is expected, only when it matches, so a file at `dest` is always
 * whole.
 */
import { createHash, Hash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { sha256File } from "./hash";

export interface DownloadRequest {
  url: string;
  dest: string;
  /** Expected sha256 (hex); a mismatch deletes the download and fails. */
  sha256?: string | null;
  /** Called with bytes received so far and the total when known. */
  onProgress?: (received: number, total: number | undefined) => void;
  /** Idle socket timeout (default 60 s). */
  timeoutMs?: number;
  /** Attempts within this call, each resuming the last (default 3). */
  attempts?: number;
}

export interface DownloadResult {
  sha256: string;
  size: number;
  /** The file was already complete at `dest`. */
  skipped: boolean;
  /** Some bytes came from an earlier, interrupted attempt. */
  resumed: boolean;
}

export class DownloadError extends Error {
  constructor(
    message: string,
    public readonly retryable: boolean,
  ) {
    super(message);
    this.name = "DownloadError";
  }
}

export async function download(req: DownloadRequest): Promise<DownloadResult> {
  fs.mkdirSync(path.dirname(req.dest), { recursive: true });
  if (fs.existsSync(req.dest)) {
    const sum = await sha256File(req.dest);
    if (!req.sha256 || req.sha256 === sum)
      return { sha256: sum, size: fs.statSync(req.dest).size, skipped: true, resumed: false };
    fs.rmSync(req.dest);
  }
  const attempts = req.attempts ?? 3;
  let resumed = false;
  let last: Error | undefined;
  for (let i = 0; i < attempts; i++) {
    try {
      const r = await attempt(req);
      resumed ||= r.resumed;
      return { ...r, resumed, skipped: false };
    } catch (e) {
      last = e as Error;
      if (e instanceof DownloadError && !e.retryable) break;
      if (fs.existsSync(`${req.dest}.part`)) resumed = true;
      await new Promise((r) => setTimeout(r, 200 * (i + 1)));
    }
  }
  throw last ?? new DownloadError(`download of ${req.url} failed`, false);
}

async function attempt(
  req: DownloadRequest,
): Promise<{ sha256: string; size: number; resumed: boolean }> {
  const part = `${req.dest}.part`;
  let offset = fs.existsSync(part) ? fs.statSync(part).size : 0;
  const url = new URL(req.url);
  if (url.protocol === "file:") {
    fs.copyFileSync(fileURLToPath(url), part);
    return finish(req, part, await sha256File(part), false);
  }
  const res = await get(
    url,
    offset > 0 ? { Range: `bytes=${offset}-` } : {},
    req.timeoutMs ?? 60_000,
  );
  const hash = createHash("sha256");
  let total: number | undefined;
  let resumed = false;
  if (res.statusCode === 416 && offset > 0) {
    // The .part may already be whole: the server says how long the file is.
    res.resume();
    const m = /\/(\d+)$/.exec(String(res.headers["content-range"] ?? ""));
    if (m && Number(m[1]) === offset) return finish(req, part, await sha256File(part), true);
    fs.rmSync(part);
    throw new DownloadError(
      `${req.url}: server refused to resume at byte ${offset}; starting again`,
      true,
    );
  }
  if (res.statusCode === 206 && offset > 0) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(res.headers["content-range"] ?? ""));
    if (!m || Number(m[1]) !== offset) {
      res.resume();
      fs.rmSync(part);
      throw new DownloadError(
        `${req.url}: server resumed at the wrong offset (${res.headers["content-range"]}); starting again`,
        true,
      );
    }
    total = m[3] === "*" ? undefined : Number(m[3]);
    await hashExisting(part, hash);
    resumed = true;
  } else if (res.statusCode === 200) {
    offset = 0;
    const len = Number(res.headers["content-length"]);
    total = Number.isFinite(len) && res.headers["content-length"] !== undefined ? len : undefined;
  } else {
    res.resume();
    const status = res.statusCode ?? 0;
    throw new DownloadError(`HTTP ${status} for ${req.url}`, status >= 500 || status === 429);
  }
  const out = fs.createWriteStream(part, { flags: offset > 0 ? "a" : "w" });
  let received = offset;
  req.onProgress?.(received, total);
  await new Promise<void>((resolve, reject) => {
    // On a failure the bytes received so far are flushed to the .part before
    // rejecting, so that the next attempt resumes exactly where this one stopped.
    let failure: Error | undefined;
    const stop = (e: Error) => {
      if (failure) return;
      failure = e;
      res.unpipe(out);
      out.end();
    };
    res.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
      req.onProgress?.(received, total);
    });
    res.on("error", stop);
    res.on("aborted", () => stop(new Error("connection closed by the server")));
    out.on("error", (e) => reject(new DownloadError(`cannot write ${part}: ${e.message}`, false)));
    out.on("close", () => {
      if (!failure && !res.complete)
        failure = new Error("connection closed before the end of the file");
      if (!failure && total !== undefined && received !== total)
        failure = new Error(`got ${received} of ${total} bytes`);
      if (failure)
        reject(
          new DownloadError(
            `${req.url}: ${failure.message} after ${received} bytes (run again to resume)`,
            true,
          ),
        );
      else resolve();
    });
    res.pipe(out);
  });
  return finish(req, part, hash.digest("hex"), resumed);
}

async function hashExisting(file: string, hash: Hash): Promise<void> {
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
}

function finish(req: DownloadRequest, part: string, sum: string, resumed: boolean) {
  if (req.sha256 && sum !== req.sha256) {
    fs.rmSync(part, { force: true });
    throw new DownloadError(
      `checksum mismatch for ${req.url}: expected sha256 ${req.sha256}, got ${sum}`,
      false,
    );
  }
  const size = fs.statSync(part).size;
  fs.renameSync(part, req.dest);
  return { sha256: sum, size, resumed };
}

/** GET following up to 5 redirects; resolves with the final response (body unread). */
function get(
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
  redirects = 5,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : url.protocol === "http:" ? http : undefined;
    if (!client)
      return reject(
        new DownloadError(`unsupported URL scheme ${url.protocol} in ${url.href}`, false),
      );
    const request = client.get(
      url,
      { headers: { "User-Agent": "casd-registry-offline/1", ...headers } },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          if (redirects <= 0)
            return reject(new DownloadError(`too many redirects from ${url.href}`, false));
          return resolve(
            get(new URL(res.headers.location, url), headers, timeoutMs, redirects - 1),
          );
        }
        resolve(res);
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no data for ${timeoutMs} ms`)));
    request.on("error", (e) => reject(new DownloadError(`${url.href}: ${e.message}`, true)));
  });
}
