/**
 * bcrypt ($2b$) in plain TypeScript, for one purpose: the htpasswd line of
 * Harbor's internal registry user. Helm's own `htpasswd` function salts at
 * random, so every render would differ (and churn the release); here the
 * salt is derived from the stack's seed, so the same inputs always give the
 * same line. Distribution accepts bcrypt only.
 *
 * Blowfish's initial state is the hexadecimal expansion of pi (18 P-array
 * words, then the four S-boxes); it is computed once with BigInt arithmetic
 * (Machin's formula) instead of being carried as a table.
 */

const WORDS = 18 + 4 * 256;

let piWordsCache: Uint32Array | undefined;

/** floor(2^bits / x^(2k+1)) series of arctan(1/x), scaled by 2^bits. */
function arctanInv(x: bigint, bits: bigint): bigint {
  const one = 1n << bits;
  const x2 = x * x;
  let term = one / x;
  let sum = term;
  let k = 1n;
  let sign = -1n;
  while (term !== 0n) {
    term /= x2;
    const t = term / (2n * k + 1n);
    if (t === 0n) break;
    sum += sign * t;
    sign = -sign;
    k += 1n;
  }
  return sum;
}

/** The first 1042 32-bit words of pi's fractional part, in hexadecimal order. */
export function piWords(): Uint32Array {
  if (piWordsCache) return piWordsCache;
  const bits = BigInt(WORDS * 32);
  const guard = 64n;
  const scaled = 4n * (4n * arctanInv(5n, bits + guard) - arctanInv(239n, bits + guard));
  const frac = (scaled >> guard) - (3n << bits);
  const out = new Uint32Array(WORDS);
  for (let i = 0; i < WORDS; i++) {
    out[i] = Number((frac >> (bits - 32n * BigInt(i + 1))) & 0xffffffffn);
  }
  piWordsCache = out;
  return out;
}

class Blowfish {
  readonly p: Uint32Array;
  readonly s: Uint32Array;

  constructor() {
    const pi = piWords();
    this.p = pi.slice(0, 18);
    this.s = pi.slice(18);
  }

  private f(x: number): number {
    const s = this.s;
    return (
      ((((s[x >>> 24] + s[256 + ((x >>> 16) & 0xff)]) >>> 0) ^ s[512 + ((x >>> 8) & 0xff)]) +
        s[768 + (x & 0xff)]) >>>
      0
    );
  }

  encrypt(lr: Uint32Array, off: number): void {
    let l = lr[off];
    let r = lr[off + 1];
    const p = this.p;
    for (let i = 0; i < 16; i += 2) {
      l = (l ^ p[i]) >>> 0;
      r = (r ^ this.f(l)) >>> 0;
      r = (r ^ p[i + 1]) >>> 0;
      l = (l ^ this.f(r)) >>> 0;
    }
    lr[off] = (r ^ p[17]) >>> 0;
    lr[off + 1] = (l ^ p[16]) >>> 0;
  }

  /** Expands key (and salt, when given) into the state: bcrypt's ExpandKey. */
  expand(key: Buffer, salt?: Buffer): void {
    let kpos = 0;
    const nextKey = (): number => {
      let w = 0;
      for (let i = 0; i < 4; i++) {
        w = ((w << 8) | key[kpos]) >>> 0;
        kpos = (kpos + 1) % key.length;
      }
      return w;
    };
    for (let i = 0; i < 18; i++) this.p[i] = (this.p[i] ^ nextKey()) >>> 0;
    let spos = 0;
    const nextSalt = (): number => {
      if (!salt) return 0;
      const w = salt.readUInt32BE(spos);
      spos = (spos + 4) % salt.length;
      return w;
    };
    const lr = new Uint32Array(2);
    for (let i = 0; i < 18; i += 2) {
      lr[0] ^= nextSalt();
      lr[1] ^= nextSalt();
      this.encrypt(lr, 0);
      this.p[i] = lr[0];
      this.p[i + 1] = lr[1];
    }
    for (let i = 0; i < 4 * 256; i += 2) {
      lr[0] ^= nextSalt();
      lr[1] ^= nextSalt();
      this.encrypt(lr, 0);
      this.s[i] = lr[0];
      this.s[i + 1] = lr[1];
    }
  }
}

const ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** bcrypt's own base64 (its alphabet, no padding). */
export function bcryptBase64(data: Buffer, length: number): string {
  let out = "";
  let i = 0;
  while (i < data.length && out.length < length) {
    const c1 = data[i++];
    out += ALPHABET[c1 >> 2];
    let c = (c1 & 0x03) << 4;
    if (i >= data.length) {
      out += ALPHABET[c];
      break;
    }
    const c2 = data[i++];
    c |= c2 >> 4;
    out += ALPHABET[c];
    c = (c2 & 0x0f) << 2;
    if (i >= data.length) {
      out += ALPHABET[c];
      break;
    }
    const c3 = data[i++];
    c |= c3 >> 6;
    out += ALPHABET[c];
    out += ALPHABET[c3 & 0x3f];
  }
  return out.slice(0, length);
}

const MAGIC = Buffer.from("OrpheanBeholderScryDoubt", "latin1");

/**
 * The `$2b$` hash of `password` with a 16-byte `salt` and `cost` (4..31).
 * Pure and deterministic: the same inputs give the same string.
 */
export function bcryptHash(password: string, salt: Buffer, cost: number): string {
  if (salt.length !== 16)
    throw new Error(`bcryptHash: the salt must be 16 bytes, got ${salt.length}`);
  if (!Number.isInteger(cost) || cost < 4 || cost > 31)
    throw new Error(`bcryptHash: cost must be 4..31, got ${cost}`);
  // $2b$: the key is the password's bytes plus a NUL, at most 72 bytes.
  const key = Buffer.concat([Buffer.from(password, "utf8"), Buffer.from([0])]).subarray(0, 72);
  const bf = new Blowfish();
  bf.expand(key, salt);
  const rounds = 2 ** cost;
  for (let i = 0; i < rounds; i++) {
    bf.expand(key);
    bf.expand(salt);
  }
  const ctext = new Uint32Array(6);
  for (let i = 0; i < 6; i++) ctext[i] = MAGIC.readUInt32BE(i * 4);
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 6; j += 2) bf.encrypt(ctext, j);
  }
  const raw = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) raw.writeUInt32BE(ctext[i], i * 4);
  const costText = String(cost).padStart(2, "0");
  return `$2b$${costText}$${bcryptBase64(salt, 22)}${bcryptBase64(raw.subarray(0, 23), 31)}`;
}
