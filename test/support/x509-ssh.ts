/**
 * OpenSSH encodings of a key pair, as the tls provider derives them with golang.org/x/crypto/ssh:
 * the authorized_keys line (`publicKeyOpenssh`), its MD5 and SHA256 fingerprints, and the
 * unencrypted "OPENSSH PRIVATE KEY" container (`privateKeyOpenssh`). ECDSA P-224 has no SSH
 * encoding: callers give empty strings for it, as the provider does.
 */
import * as crypto from "node:crypto";
import { pem } from "./x509-der";

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** SSH `string`: uint32 length + bytes. */
function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === "string" ? Buffer.from(b, "latin1") : b;
  return Buffer.concat([u32(buf.length), buf]);
}

/** SSH `mpint` from unsigned big-endian bytes: minimal, with a 0x00 when the top bit is set. */
function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  let b = unsigned.subarray(i);
  if (b.length > 0 && b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return sshString(b);
}

const b64u = (s: string | undefined): Buffer => {
  if (s === undefined) throw new Error("JWK field missing");
  return Buffer.from(s, "base64url");
};

const SSH_CURVES: Record<string, { name: string; id: string }> = {
  "P-256": { name: "ecdsa-sha2-nistp256", id: "nistp256" },
  "P-384": { name: "ecdsa-sha2-nistp384", id: "nistp384" },
  "P-521": { name: "ecdsa-sha2-nistp521", id: "nistp521" },
};

interface SshParts {
  keyType: string;
  publicBlob: Buffer;
  /** The key-specific fields of the private section (after the key type, before the comment). */
  privateFields: Buffer;
}

function parts(key: crypto.KeyObject): SshParts | undefined {
  const jwk = key.export({ format: "jwk" });
  switch (key.asymmetricKeyType) {
    case "rsa": {
      const n = mpint(b64u(jwk.n));
      const e = mpint(b64u(jwk.e));
      return {
        keyType: "ssh-rsa",
        publicBlob: Buffer.concat([sshString("ssh-rsa"), e, n]),
        privateFields: Buffer.concat([
          n,
          e,
          mpint(b64u(jwk.d)),
          mpint(b64u(jwk.qi)),
          mpint(b64u(jwk.p)),
          mpint(b64u(jwk.q)),
        ]),
      };
    }
    case "ec": {
      const curve = SSH_CURVES[jwk.crv ?? ""];
      if (!curve) return undefined;
      const point = Buffer.concat([Buffer.from([4]), b64u(jwk.x), b64u(jwk.y)]);
      return {
        keyType: curve.name,
        publicBlob: Buffer.concat([sshString(curve.name), sshString(curve.id), sshString(point)]),
        privateFields: Buffer.concat([sshString(curve.id), sshString(point), mpint(b64u(jwk.d))]),
      };
    }
    case "ed25519": {
      const pub = b64u(jwk.x);
      return {
        keyType: "ssh-ed25519",
        publicBlob: Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]),
        privateFields: Buffer.concat([
          sshString(pub),
          sshString(Buffer.concat([b64u(jwk.d), pub])),
        ]),
      };
    }
    default:
      return undefined;
  }
}

export interface SshEncodings {
  publicKeyOpenssh: string;
  publicKeyFingerprintMd5: string;
  publicKeyFingerprintSha256: string;
  privateKeyOpenssh: string;
}

/** All OpenSSH encodings of `privateKey`, or empty strings where SSH has none (ECDSA P-224). */
export function sshEncodings(privateKey: crypto.KeyObject): SshEncodings {
  // P-224 is not exportable as JWK by Node and has no SSH encoding: check it first.
  if (
    privateKey.asymmetricKeyType === "ec" &&
    privateKey.asymmetricKeyDetails?.namedCurve === "secp224r1"
  ) {
    return {
      publicKeyOpenssh: "",
      publicKeyFingerprintMd5: "",
      publicKeyFingerprintSha256: "",
      privateKeyOpenssh: "",
    };
  }
  const p = parts(privateKey);
  if (!p) throw new Error(`no OpenSSH encoding for ${privateKey.asymmetricKeyType} keys`);
  const md5 = crypto.createHash("md5").update(p.publicBlob).digest("hex");
  const sha256 = crypto.createHash("sha256").update(p.publicBlob).digest("base64");

  const check = crypto.randomBytes(4);
  let section = Buffer.concat([check, check, sshString(p.keyType), p.privateFields, sshString("")]);
  const pad: number[] = [];
  for (let i = 1; (section.length + pad.length) % 8 !== 0; i++) pad.push(i);
  section = Buffer.concat([section, Buffer.from(pad)]);
  const container = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    u32(1),
    sshString(p.publicBlob),
    sshString(section),
  ]);

  return {
    publicKeyOpenssh: `${p.keyType} ${p.publicBlob.toString("base64")}\n`,
    publicKeyFingerprintMd5: md5.match(/../g)?.join(":") ?? "",
    publicKeyFingerprintSha256: `SHA256:${sha256.replace(/=+$/, "")}`,
    privateKeyOpenssh: pem("OPENSSH PRIVATE KEY", container),
  };
}
