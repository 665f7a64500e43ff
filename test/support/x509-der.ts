/**
 * Minimal DER (ITU-T X.690) encoder and reader: just what the tls materializer needs to build
 * certificates and CSRs byte for byte the way Go's crypto/x509 does, and to read back the CSRs
 * and CA certificates it is given. No crypto here; see x509.ts.
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV with a single-byte identifier (enough for every tag X.509 uses). */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export function seq(...items: Buffer[]): Buffer {
  return tlv(TAG.SEQUENCE, Buffer.concat(items));
}

/** SET OF: DER orders the elements by their encodings (as Go's encoding/asn1 does). */
export function setOf(items: Buffer[]): Buffer {
  return tlv(TAG.SET, Buffer.concat([...items].sort(Buffer.compare)));
}

/** INTEGER from a non-negative bigint: minimal two's complement. */
export function integer(v: bigint | number): Buffer {
  let n = BigInt(v);
  if (n < 0n) throw new Error("integer: negative values are not used here");
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  } while (n > 0n);
  if (bytes[0] & 0x80) bytes.unshift(0);
  return tlv(TAG.INTEGER, Buffer.from(bytes));
}

export function boolean(b: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([b ? 0xff : 0x00]));
}

export function nullValue(): Buffer {
  return tlv(TAG.NULL, Buffer.alloc(0));
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error(`oid: ${dotted}`);
  const out: number[] = [];
  const push = (v: bigint): void => {
    const chunk: number[] = [Number(v & 0x7fn)];
    for (v >>= 7n; v > 0n; v >>= 7n) chunk.unshift(Number(v & 0x7fn) | 0x80);
    out.push(...chunk);
  };
  push(arcs[0] * 40n + arcs[1]);
  for (const a of arcs.slice(2)) push(a);
  return tlv(TAG.OID, Buffer.from(out));
}

export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bytes]));
}

export function octetString(bytes: Buffer): Buffer {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** [n] EXPLICIT: a constructed context tag wrapping one encoded element. */
export function explicit(n: number, inner: Buffer): Buffer {
  return tlv(0xa0 | n, inner);
}

/** [n] IMPLICIT over raw content; `constructed` for SEQUENCE/SET content. */
export function implicit(n: number, content: Buffer, constructed = false): Buffer {
  return tlv((constructed ? 0xa0 : 0x80) | n, content);
}

/**
 * The character set of ASN.1 PrintableString as Go's encoding/asn1 checks it when marshalling
 * (it lets '*' through for compatibility and rejects '&').
 */
export function isPrintable(s: string): boolean {
  return /^[A-Za-z0-9 '()+,\-./:=?*]*$/.test(s);
}

/** A Go string marshalled with no explicit type: PrintableString when it can be, else UTF8String. */
export function goString(s: string): Buffer {
  return isPrintable(s)
    ? tlv(TAG.PRINTABLE_STRING, Buffer.from(s, "latin1"))
    : tlv(TAG.UTF8_STRING, Buffer.from(s, "utf8"));
}

/** IA5String holds ASCII only. */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

export function ia5String(s: string): Buffer {
  if (!isAscii(s)) throw new Error(`${JSON.stringify(s)} is not an IA5String`);
  return tlv(TAG.IA5_STRING, Buffer.from(s, "latin1"));
}

const two = (n: number): string => String(n).padStart(2, "0");

/** Time as Go marshals it: UTCTime for 1950..2049, GeneralizedTime otherwise; whole seconds, UTC. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest =
    two(d.getUTCMonth() + 1) +
    two(d.getUTCDate()) +
    two(d.getUTCHours()) +
    two(d.getUTCMinutes()) +
    two(d.getUTCSeconds()) +
    "Z";
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(two(y % 100) + rest, "latin1"));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y).padStart(4, "0") + rest, "latin1"));
}

// ---------------------------------------------------------------- reading

export interface DerNode {
  /** The identifier octet. */
  tag: number;
  /** Content octets. */
  content: Buffer;
  /** The whole TLV. */
  raw: Buffer;
}

/** Read the TLV at `offset` of `buf`. */
export function read(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new Error("DER: truncated");
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error("DER: multi-byte tags are not supported");
  let len = buf[offset + 1];
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("DER: unsupported length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[offset + 2 + i];
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new Error("DER: length past the end");
  return {
    tag,
    content: buf.subarray(offset + header, end),
    raw: buf.subarray(offset, end),
  };
}

/** The elements inside a constructed node. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let off = 0; off < node.content.length;) {
    const child = read(node.content, off);
    out.push(child);
    off += child.raw.length;
  }
  return out;
}

/** Read a whole buffer as exactly one element. */
export function readOne(buf: Buffer): DerNode {
  const node = read(buf, 0);
  if (node.raw.length !== buf.length) throw new Error("DER: trailing data");
  return node;
}

export function readOid(node: DerNode): string {
  if (node.tag !== TAG.OID) throw new Error("DER: expected an OBJECT IDENTIFIER");
  const arcs: bigint[] = [];
  let v = 0n;
  for (const b of node.content) {
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs[0] < 80n ? arcs[0] / 40n : 2n;
  return [first, arcs[0] - first * 40n, ...arcs.slice(1)].join(".");
}

/** The text of a directory-string-like value, or undefined for a non-string type (as Go). */
export function readString(node: DerNode): string | undefined {
  switch (node.tag) {
    case TAG.UTF8_STRING:
      return node.content.toString("utf8");
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.NUMERIC_STRING:
    case TAG.T61_STRING:
      return node.content.toString("latin1");
    case TAG.BMP_STRING: {
      const b = Buffer.from(node.content);
      b.swap16();
      return b.toString("utf16le");
    }
    default:
      return undefined;
  }
}

// ---------------------------------------------------------------- PEM

/** PEM the way Go's encoding/pem writes it: 64-column base64, trailing newline. */
export function pem(label: string, der: Buffer): string {
  const b64 = der.toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** The first PEM block of `text` (anything before it is skipped, as Go's pem.Decode does). */
export function firstPemBlock(text: string): { label: string; der: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  const body = m[2]
    .split(/\r?\n/)
    .filter((l) => !l.includes(":"))
    .join("");
  return { label: m[1], der: Buffer.from(body.replace(/\s+/g, ""), "base64") };
}
