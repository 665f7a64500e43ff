/**
 * `pulumi up` compiles the TypeScript program itself, with the project's
 * ts-node and TypeScript when present and otherwise with the SDK's vendored
 * ts-node 7 / TypeScript 3.8, which reject today's syntax. jest never sees
 * that path, so this test loads `infra/` the way the engine does, in a
 * separate process, type checking on.
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { devStack } from "../support/stack";

const SCRIPT = path.resolve(__dirname, "../support/engine-load.js");

describe("the program loads the way the Pulumi engine loads it", () => {
  it("uses the project's ts-node 10 and TypeScript 5, type checks, and registers the stack", () => {
    const { config, secrets } = devStack();
    const out = execFileSync(process.execPath, [SCRIPT], {
      env: { ...process.env, CASD_ENGINE_CONFIG: JSON.stringify({ config, secrets }) },
      encoding: "utf8",
      timeout: 120_000,
    });
    const seen = JSON.parse(out) as {
      tsNode: string;
      typescript: string;
      tsNodePath: string;
      exports: string[];
      types: string[];
    };
    expect(seen.tsNode).toMatch(/^10\./);
    expect(seen.typescript).toMatch(/^5\./);
    expect(seen.tsNodePath).toBe(require.resolve("ts-node"));
    expect(seen.tsNodePath).not.toContain("vendor");
    expect(seen.exports).toEqual(
      expect.arrayContaining(["caCertPem", "caFingerprintSha256", "hostname"]),
    );
    expect(seen.types).toEqual(
      expect.arrayContaining([
        "tls:index/privateKey:PrivateKey",
        "tls:index/locallySignedCert:LocallySignedCert",
      ]),
    );
  }, 180_000);
});
