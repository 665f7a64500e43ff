import { sshHostKeyPinned } from "../../policies/ssh-host-key-pinned";
import { runResource, stringAsset, UNKNOWN_OBJECT, UNKNOWN_STRING, withField } from "./support";

const COMMAND = "command:remote:Command";
const COPY = "command:remote:CopyToRemote";
const DOCKER = "pulumi:providers:docker";

const HOST_KEY =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb1m5cnhSSt8yQwMUPsVY5u0r0RKzK4kcHcYzYTpqJv root@reg";
const JUMP_KEY = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEm2nL4=";

const CONNECTION = {
  host: "10.50.6.62",
  port: 22,
  user: "deploy",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n-----END OPENSSH PRIVATE KEY-----\n",
  hostKey: HOST_KEY,
  dialErrorLimit: 10,
  perDialTimeout: 15,
  proxy: { host: "10.50.6.1", port: 22, user: "jump", hostKey: JUMP_KEY },
};
const CMD = { connection: CONNECTION, create: "true", logging: "stdoutAndStderr" };

const run = (props: Record<string, unknown>, type = COMMAND) =>
  runResource(sshHostKeyPinned, { type, props });

const DOCKER_OK = {
  host: "ssh://deploy@10.50.6.62:22",
  sshOpts: JSON.stringify([
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "UserKnownHostsFile=/etc/casd/known_hosts",
  ]),
};

describe("ssh-host-key-pinned", () => {
  it("is mandatory", () => {
    expect(sshHostKeyPinned.enforcementLevel).toBe("mandatory");
  });

  it("accepts pinned connections", async () => {
    expect(await run(CMD)).toEqual([]);
    expect(await run(withField(CMD, ["connection", "proxy"], undefined))).toEqual([]);
    expect(
      await run({ connection: CONNECTION, remotePath: "/tmp/x", source: stringAsset("x") }, COPY),
    ).toEqual([]);
  });

  it.each([
    [
      "no hostKey",
      ["connection", "hostKey"],
      undefined,
      "connection.hostKey is not set; without it @pulumi/command accepts any host key. Pin the host's public key.",
    ],
    [
      "an empty hostKey",
      ["connection", "hostKey"],
      " ",
      "connection.hostKey is not set; without it @pulumi/command accepts any host key. Pin the host's public key.",
    ],
    [
      "a hostKey that is no public key",
      ["connection", "hostKey"],
      "SHA256:3q2+7w",
      'connection.hostKey is not an OpenSSH public key ("<type> <base64>"); pin the host\'s public key.',
    ],
    [
      "a proxy without hostKey",
      ["connection", "proxy", "hostKey"],
      undefined,
      "connection.proxy.hostKey is not set; without it @pulumi/command accepts any host key. Pin the host's public key.",
    ],
    ["no connection", ["connection"], undefined, "connection is not set."],
  ])("refuses a command with %s", async (_label, path, value, message) => {
    expect(await run(withField(CMD, path, value))).toEqual([message]);
  });

  it("checks CopyToRemote the same way", async () => {
    const copy = {
      connection: withField(CONNECTION, ["hostKey"], undefined),
      remotePath: "/tmp/x",
      source: stringAsset("x"),
    };
    expect(await run(copy, COPY)).toEqual([
      "connection.hostKey is not set; without it @pulumi/command accepts any host key. Pin the host's public key.",
    ]);
  });

  describe("Docker provider over ssh", () => {
    it("accepts strict checking against a known-hosts file (JSON-encoded by the SDK, or a list)", async () => {
      expect(await run(DOCKER_OK, DOCKER)).toEqual([]);
      expect(await run({ ...DOCKER_OK, sshOpts: JSON.parse(DOCKER_OK.sshOpts) }, DOCKER)).toEqual(
        [],
      );
    });

    it("refuses missing StrictHostKeyChecking=yes", async () => {
      const props = {
        ...DOCKER_OK,
        sshOpts: JSON.stringify([
          "-o",
          "StrictHostKeyChecking=accept-new",
          "-o",
          "UserKnownHostsFile=/etc/casd/known_hosts",
        ]),
      };
      expect(await run(props, DOCKER)).toEqual([
        "sshOpts of the Docker provider for ssh://deploy@10.50.6.62:22 lack StrictHostKeyChecking=yes; pin the host key.",
      ]);
    });

    it("refuses a known-hosts file that is /dev/null", async () => {
      const props = {
        ...DOCKER_OK,
        sshOpts: JSON.stringify([
          "-o",
          "StrictHostKeyChecking=yes",
          "-o",
          "UserKnownHostsFile=/dev/null",
        ]),
      };
      expect(await run(props, DOCKER)).toEqual([
        "sshOpts of the Docker provider for ssh://deploy@10.50.6.62:22 lack a UserKnownHostsFile holding the pinned host key.",
      ]);
    });

    it("ignores a local Docker host", async () => {
      expect(await run({ host: "unix:///var/run/docker.sock" }, DOCKER)).toEqual([]);
    });
  });

  it("reports nothing on values unknown during preview", async () => {
    expect(await run(withField(CMD, ["connection"], UNKNOWN_OBJECT))).toEqual([]);
    expect(await run(withField(CMD, ["connection", "hostKey"], UNKNOWN_STRING))).toEqual([]);
    expect(await run(withField(CMD, ["connection", "proxy"], UNKNOWN_OBJECT))).toEqual([]);
    expect(await run({ ...DOCKER_OK, sshOpts: UNKNOWN_STRING }, DOCKER)).toEqual([]);
  });
});
