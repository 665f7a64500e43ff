/**
 * infra/remote: the connection builder and the pure script renderers, with
 * exact expected text.
 */
import * as pulumi from "@pulumi/pulumi";
import { sshConnection } from "../../infra/remote/connection";
import {
  embedFile,
  PRELUDE,
  remoteInvocation,
  renderStepScript,
  sha256Hex,
  shQuote,
} from "../../infra/remote/script";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyForTests";

function resolve<T>(o: pulumi.Input<T> | undefined): Promise<T | undefined> {
  return new Promise((r) => pulumi.output(o).apply((v) => r(v as T)));
}

describe("shQuote", () => {
  test.each([
    ["plain", "'plain'"],
    ["", "''"],
    ["it's", `'it'"'"'s'`],
    ["$HOME `id` \\n", "'$HOME `id` \\n'"],
  ])("%j -> %s", (input, expected) => {
    expect(shQuote(input)).toBe(expected);
  });
});

describe("sha256Hex", () => {
  const { createHash } = jest.requireActual<typeof import("node:crypto")>("node:crypto");
  test("is the sha256 of length-prefixed parts", () => {
    expect(sha256Hex("abc")).toBe(createHash("sha256").update("3:abc").digest("hex"));
    expect(sha256Hex("ab", "c")).toBe(createHash("sha256").update("2:ab1:c").digest("hex"));
  });
  test("part boundaries matter", () => {
    expect(sha256Hex("ab", "c")).not.toBe(sha256Hex("a", "bc"));
  });
});

describe("remoteInvocation", () => {
  test.each([
    [{ sudo: false }, "bash -c 'echo hi'"],
    [{ sudo: true }, "sudo -n bash -c 'echo hi'"],
  ])("%j", (opts, expected) => {
    expect(remoteInvocation("echo hi", opts)).toBe(expected);
  });
  test("quotes a script holding single quotes", () => {
    expect(remoteInvocation("echo 'a'", { sudo: false })).toBe(`bash -c 'echo '"'"'a'"'"''`);
  });
});

describe("embedFile", () => {
  test("untracked (casd_file), default owner", () => {
    expect(embedFile("/etc/x y", "hi\n", "444")).toBe(
      "printf '%s' 'aGkK' | base64 -d | casd_file '/etc/x y' 444 root root",
    );
  });
  test("tracked (casd_tfile), explicit owner", () => {
    expect(embedFile("/etc/a", "hi\n", "400", "reg", "reg", true)).toBe(
      "printf '%s' 'aGkK' | base64 -d | casd_tfile '/etc/a' 400 reg reg",
    );
  });
});

describe("renderStepScript", () => {
  test("prelude, body, one result line", () => {
    expect(renderStepScript({ step: "dirs", body: "casd_dir /x 755 root root\n\n" })).toBe(
      [
        "#!/usr/bin/env bash",
        "# casd-registry step: dirs",
        PRELUDE,
        "casd_dir /x 755 root root",
        `if [ "$CASD_CHANGED" = 1 ]; then echo 'casd: dirs: changed'; else echo 'casd: dirs: unchanged'; fi`,
        "",
      ].join("\n"),
    );
  });
  test("the prelude starts with strict mode and a private umask", () => {
    expect(PRELUDE.split("\n").slice(0, 2)).toEqual(["set -euo pipefail", "umask 077"]);
  });
});

describe("sshConnection", () => {
  test("pins the host key, marks the private key secret, fills defaults", async () => {
    const c = sshConnection({ address: "10.0.0.5", hostKey: KEY, privateKey: "PRIVATE" });
    expect(c.host).toBe("10.0.0.5");
    expect(c.port).toBe(22);
    expect(c.user).toBe("root");
    expect(c.hostKey).toBe(KEY);
    expect(c.dialErrorLimit).toBe(10);
    expect(c.perDialTimeout).toBe(15);
    expect(c.proxy).toBeUndefined();
    expect(await pulumi.isSecret(pulumi.output(c.privateKey))).toBe(true);
    expect(await resolve(c.privateKey)).toBe("PRIVATE");
  });

  test("refuses a connection without a host key", () => {
    expect(() => sshConnection({ address: "10.0.0.5", hostKey: "", privateKey: "k" })).toThrow(
      "sshConnection: hostKey is required for 10.0.0.5 (an unpinned connection accepts any host)",
    );
  });

  test("a bastion needs its own host key", () => {
    expect(() =>
      sshConnection({
        address: "10.0.0.5",
        hostKey: KEY,
        privateKey: "k",
        bastion: { address: "10.0.0.1", hostKey: "" },
      }),
    ).toThrow("sshConnection: the bastion of 10.0.0.5 needs its own hostKey");
  });

  test("a bastion gets its own pinned key, user, port, limits and (secret) private key", async () => {
    const c = sshConnection({
      address: "10.0.0.5",
      user: "ops",
      port: 2222,
      hostKey: KEY,
      privateKey: "k",
      bastion: { address: "10.0.0.1", hostKey: "ssh-ed25519 BASTION", user: "jump" },
      bastionPrivateKey: "bk",
      dialErrorLimit: 3,
      perDialTimeout: 7,
    });
    expect(c.user).toBe("ops");
    expect(c.port).toBe(2222);
    const proxy = c.proxy as unknown as Record<string, unknown>;
    expect({ ...proxy, privateKey: undefined }).toEqual({
      host: "10.0.0.1",
      port: 22,
      user: "jump",
      hostKey: "ssh-ed25519 BASTION",
      privateKey: undefined,
      dialErrorLimit: 3,
      perDialTimeout: 7,
    });
    expect(await resolve(proxy.privateKey as pulumi.Output<string>)).toBe("bk");
    expect(await pulumi.isSecret(proxy.privateKey as pulumi.Output<string>)).toBe(true);
  });
});
