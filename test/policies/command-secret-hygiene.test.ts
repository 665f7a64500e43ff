import { commandSecretHygiene } from "../../policies/command-secret-hygiene";
import { HARBOR_YML } from "./harbor-fixture";
import { runResource, UNKNOWN_STRING, withField } from "./support";

const TYPE = "command:remote:Command";
const CONNECTION = {
  host: "10.50.6.62",
  user: "deploy",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----",
  hostKey: "ssh-ed25519 AAAA",
};

const INSTALL = {
  connection: CONNECTION,
  create:
    "set -euo pipefail\numask 077\ncat > /etc/casd/harbor/harbor.yml.tmp\nmv /etc/casd/harbor/harbor.yml.tmp /etc/casd/harbor/harbor.yml\n",
  stdin: HARBOR_YML,
  logging: "none",
};
const SECRET_STDOUT = { additionalSecretOutputs: ["connection", "stdout"] };

const run = (
  props: Record<string, unknown>,
  opts: { additionalSecretOutputs?: string[] } = SECRET_STDOUT,
) => runResource(commandSecretHygiene, { type: TYPE, props, opts });

const LOGGING = (is: string, why: string) =>
  `logging is ${is}; this command carries a secret (${why}) and must use logging "none".`;
const STDOUT = (why: string) =>
  `stdout is not a secret output; this command carries a secret (${why}): add "stdout" to additionalSecretOutputs.`;

describe("command-secret-hygiene", () => {
  it("is mandatory", () => {
    expect(commandSecretHygiene.enforcementLevel).toBe("mandatory");
  });

  it("accepts a secret-carrying command that logs nothing and keeps stdout secret", async () => {
    expect(await run(INSTALL)).toEqual([]);
  });

  it("leaves commands without secrets alone", async () => {
    const probe = {
      connection: CONNECTION,
      create: "curl -fsS --cacert /etc/casd/ca.crt https://reg.casd.local/api/v2.0/health",
    };
    expect(await run(probe, { additionalSecretOutputs: [] })).toEqual([]);
  });

  it.each([
    [
      "logging stdoutAndStderr",
      ["logging"],
      "stdoutAndStderr",
      LOGGING("stdoutAndStderr", "harbor.yml in stdin"),
    ],
    [
      "logging left to the default",
      ["logging"],
      undefined,
      LOGGING("not set (stdoutAndStderr)", "harbor.yml in stdin"),
    ],
  ])("refuses %s", async (_label, path, value, message) => {
    expect(await run(withField(INSTALL, path, value))).toEqual([message]);
  });

  it("refuses a stdout that is not secret", async () => {
    expect(await run(INSTALL, { additionalSecretOutputs: ["connection"] })).toEqual([
      STDOUT("harbor.yml in stdin"),
    ]);
  });

  it.each([
    [
      "a PEM private key in the script",
      {
        create:
          "cat > /etc/x.key <<'EOF'\n-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\nEOF\n",
      },
      "a PEM private key in create",
    ],
    [
      "a PKCS#8 key in stdin",
      { stdin: "-----BEGIN PRIVATE KEY-----\nMIG\n-----END PRIVATE KEY-----\n" },
      "a PEM private key in stdin",
    ],
    [
      "a password-named environment variable",
      { environment: { HARBOR_ADMIN_PASSWORD: "x" } },
      "environment.HARBOR_ADMIN_PASSWORD",
    ],
    [
      "a secret-named YAML key in stdin",
      { stdin: "robot:\n  name: ci\n  token: abc\n" },
      "robot.token in stdin",
    ],
    [
      "a secret in the delete script",
      { delete: "-----BEGIN RSA PRIVATE KEY-----\n" },
      "a PEM private key in delete",
    ],
  ])("recognises %s", async (_label, inputs, why) => {
    const props = { connection: CONNECTION, create: "true", ...inputs };
    expect(await run(props, { additionalSecretOutputs: [] })).toEqual([
      LOGGING("not set (stdoutAndStderr)", why),
      STDOUT(why),
    ]);
  });

  it("does not count the connection's private key (it never reaches the script)", async () => {
    expect(
      await run({ connection: CONNECTION, create: "uptime" }, { additionalSecretOutputs: [] }),
    ).toEqual([]);
  });

  it("applies to local commands too", async () => {
    const props = { create: "cat", stdin: HARBOR_YML };
    expect(
      await runResource(commandSecretHygiene, { type: "command:local:Command", props }),
    ).toEqual([
      LOGGING("not set (stdoutAndStderr)", "harbor.yml in stdin"),
      STDOUT("harbor.yml in stdin"),
    ]);
  });

  it("reports nothing while the inputs are unknown during preview", async () => {
    expect(await run(withField(INSTALL, ["stdin"], UNKNOWN_STRING), {})).toEqual([]);
    expect(await run(withField(INSTALL, ["logging"], UNKNOWN_STRING))).toEqual([]);
  });
});
