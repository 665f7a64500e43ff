import { ResourceValidationPolicy } from "@pulumi/policy";
import { at, forTypes, isRecord, TYPES, UNKNOWN } from "./props";

/** An OpenSSH public key line: `<type> <base64> [comment]`. */
const PUBLIC_KEY =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,2}( .*)?$/;

function checkHostKey(value: unknown, field: string, report: (m: string) => void): void {
  if (value === UNKNOWN) {
    return;
  }
  if (typeof value !== "string" || value.trim() === "") {
    report(
      `${field} is not set; without it @pulumi/command accepts any host key. Pin the host's public key.`,
    );
  } else if (!PUBLIC_KEY.test(value.trim())) {
    report(`${field} is not an OpenSSH public key ("<type> <base64>"); pin the host's public key.`);
  }
}

/** The Docker provider's `sshOpts`, given as a list or JSON-encoded by the SDK. */
function sshOptions(value: unknown): string[] | undefined {
  if (Array.isArray(value)) {
    return value.map(String);
  }
  if (typeof value === "string") {
    try {
      const parsed: unknown = JSON.parse(value);
      return Array.isArray(parsed) ? parsed.map(String) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Every SSH connection pins the host key: remote commands and copies (and
 * the jump host of a proxied connection) set `hostKey`; a Docker provider on
 * an ssh:// host passes `StrictHostKeyChecking=yes` and a
 * `UserKnownHostsFile` to ssh.
 */
export const sshHostKeyPinned: ResourceValidationPolicy = {
  name: "ssh-host-key-pinned",
  description:
    "Every SSH connection must pin the host key: hostKey on remote commands and their proxies, strict host key checking against a known-hosts file for Docker over ssh.",
  enforcementLevel: "mandatory",
  severity: "critical",
  validateResource: forTypes(
    [TYPES.remoteCommand, TYPES.copyToRemote, TYPES.dockerProvider],
    (props, args, report) => {
      if (args.type === TYPES.dockerProvider) {
        const host = at(props, "host");
        if (typeof host !== "string" || !host.startsWith("ssh://")) {
          return;
        }
        const raw = at(props, "sshOpts");
        if (raw === UNKNOWN) {
          return;
        }
        const opts = (sshOptions(raw) ?? []).join(" ");
        if (!/StrictHostKeyChecking[= ]+yes\b/i.test(opts)) {
          report(
            `sshOpts of the Docker provider for ${host} lack StrictHostKeyChecking=yes; pin the host key.`,
          );
        }
        const known = /UserKnownHostsFile[= ]+(\S+)/i.exec(opts);
        if (!known || known[1] === "/dev/null") {
          report(
            `sshOpts of the Docker provider for ${host} lack a UserKnownHostsFile holding the pinned host key.`,
          );
        }
        return;
      }
      const connection = at(props, "connection");
      if (connection === UNKNOWN) {
        return;
      }
      if (!isRecord(connection)) {
        report("connection is not set.");
        return;
      }
      checkHostKey(at(connection, "hostKey"), "connection.hostKey", report);
      const proxy = at(connection, "proxy");
      if (proxy === UNKNOWN || proxy === undefined || proxy === null) {
        return;
      }
      checkHostKey(at(proxy, "hostKey"), "connection.proxy.hostKey", report);
    },
  ),
};
