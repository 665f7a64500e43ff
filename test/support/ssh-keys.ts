/** SSH key material for tests. */
import { generateKeyPairSync } from "node:crypto";

/** Generates an ed25519 key pair: the private key (OpenSSH PEM) and the public line. */
export function sshKeyPair(): { privateKey: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
  const type = Buffer.from("ssh-ed25519");
  const blob = Buffer.concat([u32(type.length), type, u32(raw.length), raw]);
  return {
    privateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    publicKey: `ssh-ed25519 ${blob.toString("base64")}`,
  };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
