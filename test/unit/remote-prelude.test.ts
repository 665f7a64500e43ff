/**
 * The prelude's helpers, run for real by bash in a temp directory (as the
 * current user, so no root is needed): check-then-change, atomic writes,
 * stale temp sweeping, and the undo journal restoring the prior state.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { renderStepScript, shQuote } from "../../infra/remote/script";

const USER = spawnSync("id", ["-un"], { encoding: "utf8" }).stdout.trim();
const GROUP = spawnSync("id", ["-gn"], { encoding: "utf8" }).stdout.trim();

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "casd-prelude-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs a step body (journal root inside the temp dir) and returns exit code, stdout, stderr. */
function step(body: string, stdin = ""): { code: number | null; stdout: string; stderr: string } {
  const script = renderStepScript({
    step: "t",
    body: `CASD_UNDO_ROOT=${shQuote(path.join(dir, "undo"))}\n${body}`,
  });
  const r = spawnSync("bash", ["-c", script], { input: stdin, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function modeOf(p: string): string {
  return (fs.statSync(p).mode & 0o7777).toString(8);
}

/** Every path under root with type, mode and content: the state a delete must restore. */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string): void => {
    for (const e of fs.readdirSync(p).sort()) {
      const f = path.join(p, e);
      const st = fs.lstatSync(f);
      const rel = path.relative(root, f);
      if (st.isDirectory()) {
        out[rel] = `dir ${modeOf(f)}`;
        walk(f);
      } else out[rel] = `file ${modeOf(f)} ${fs.readFileSync(f, "utf8")}`;
    }
  };
  walk(root);
  return out;
}

describe("casd_file", () => {
  test("writes atomically with mode, then reports unchanged for equal content and mode", () => {
    const f = path.join(dir, "a.txt");
    const body = `printf 'x\\n' | casd_file ${shQuote(f)} 0640 ${USER} ${GROUP}`;
    expect(step(body)).toEqual({ code: 0, stdout: "casd: t: changed\n", stderr: "" });
    expect(fs.readFileSync(f, "utf8")).toBe("x\n");
    expect(modeOf(f)).toBe("640");
    const ino = fs.statSync(f).ino;
    expect(step(body)).toEqual({ code: 0, stdout: "casd: t: unchanged\n", stderr: "" });
    expect(fs.statSync(f).ino).toBe(ino);
    expect(fs.readdirSync(dir)).toEqual(["a.txt"]);
  });

  test("a mode drift alone is a change", () => {
    const f = path.join(dir, "a.txt");
    fs.writeFileSync(f, "x\n", { mode: 0o600 });
    expect(step(`printf 'x\\n' | casd_file ${shQuote(f)} 644 ${USER} ${GROUP}`).stdout).toBe(
      "casd: t: changed\n",
    );
    expect(modeOf(f)).toBe("644");
  });

  test("sweeps the temp file a killed run left beside its destination (and only that one)", () => {
    const f = path.join(dir, "key");
    fs.writeFileSync(f, "k\n", { mode: 0o400 });
    fs.chmodSync(f, 0o400);
    fs.writeFileSync(path.join(dir, ".casd.key.AbC123"), "partial");
    fs.writeFileSync(path.join(dir, ".casd.other.AbC123"), "someone else's");
    expect(step(`printf 'k\\n' | casd_file ${shQuote(f)} 400 ${USER} ${GROUP}`).stdout).toBe(
      "casd: t: changed\n",
    );
    expect(fs.readdirSync(dir).sort()).toEqual([".casd.other.AbC123", "key"]);
  });
});

describe("casd_ver_ge", () => {
  test.each([
    ["1.29.2", "1.18.0", 0],
    ["1.18.0", "1.18.0", 0],
    ["1.17.1", "1.18.0", 1],
    ["2.3.3", "1.18.0", 0],
    ["1.9.0", "1.18.0", 1],
  ])("%s >= %s: exit %d", (a, b, code) => {
    expect(step(`if casd_ver_ge ${a} ${b}; then exit 0; else exit 1; fi`).code).toBe(code);
  });
});

describe("undo journal", () => {
  test("create, re-run unchanged, then undo restores exactly the prior state (kept dir aside)", () => {
    const root = path.join(dir, "host");
    fs.mkdirSync(path.join(root, "etc"), { recursive: true });
    fs.mkdirSync(path.join(root, "opt"), { mode: 0o700 });
    fs.chmodSync(path.join(root, "opt"), 0o700);
    fs.writeFileSync(path.join(root, "etc", "old.conf"), "old\n", { mode: 0o600 });
    const before = snapshot(root);
    const q = (p: string): string => shQuote(path.join(root, p));
    const body = [
      "casd_undo_begin host-t",
      `casd_tdir ${q("data/registry")} 755 ${USER} ${GROUP}`,
      `casd_tdir ${q("opt")} 755 ${USER} ${GROUP}`,
      `casd_tdir ${q("etc/casd/tls")} 750 ${USER} ${GROUP}`,
      `printf 'new\\n' | casd_tfile ${q("etc/old.conf")} 644 ${USER} ${GROUP}`,
      `printf 'secret\\n' | casd_tfile ${q("etc/casd/tls/server.key")} 400 ${USER} ${GROUP}`,
    ].join("\n");
    expect(step(body)).toEqual({ code: 0, stdout: "casd: t: changed\n", stderr: "" });
    expect(snapshot(root)).toEqual({
      data: "dir 755",
      "data/registry": "dir 755",
      etc: before.etc,
      "etc/casd": "dir 755",
      "etc/casd/tls": "dir 750",
      "etc/casd/tls/server.key": "file 400 secret\n",
      "etc/old.conf": "file 644 new\n",
      opt: "dir 755",
    });
    const journal = fs.readFileSync(path.join(dir, "undo", "host-t.list"), "utf8");
    expect(journal).toBe(
      [
        `absent\t${root}/data`,
        `absent\t${root}/data/registry`,
        `dir\t${root}/opt\t700\t${USER}\t${GROUP}`,
        `absent\t${root}/etc/casd`,
        `absent\t${root}/etc/casd/tls`,
        `file\t${root}/etc/old.conf\t600\t${USER}\t${GROUP}\t${dir}/undo/host-t.d/6`,
        `absent\t${root}/etc/casd/tls/server.key`,
        "",
      ].join("\n"),
    );
    expect(modeOf(path.join(dir, "undo"))).toBe("700");

    // A second run changes nothing and journals nothing new.
    expect(step(body)).toEqual({ code: 0, stdout: "casd: t: unchanged\n", stderr: "" });
    expect(fs.readFileSync(path.join(dir, "undo", "host-t.list"), "utf8")).toBe(journal);

    // Undo, keeping the data directory.
    const undo = step(`casd_undo_run host-t ${q("data/registry")}`);
    expect(undo.code).toBe(0);
    expect(undo.stdout).toBe("casd: t: changed\n");
    expect(undo.stderr).toBe(
      `casd: kept ${root}/data/registry: registry data is never deleted\ncasd: kept ${root}/data: not empty (holds files this step did not create)\n`,
    );
    expect(snapshot(root)).toEqual({ ...before, data: "dir 755", "data/registry": "dir 755" });
    expect(fs.existsSync(path.join(dir, "undo"))).toBe(false);

    // Undo again: nothing journaled, nothing to do.
    expect(step("casd_undo_run host-t")).toEqual({
      code: 0,
      stdout: "casd: t: unchanged\n",
      stderr: "casd: nothing journaled for host-t: nothing to undo\n",
    });
  });

  test("a directory that gained foreign files is kept, not emptied", () => {
    const d = path.join(dir, "install");
    expect(step(`casd_undo_begin j\ncasd_tdir ${shQuote(d)} 755 ${USER} ${GROUP}`).code).toBe(0);
    fs.writeFileSync(path.join(d, "harbor.tgz"), "x");
    const r = step("casd_undo_run j");
    expect(r.stderr).toBe(`casd: kept ${d}: not empty (holds files this step did not create)\n`);
    expect(fs.readdirSync(d)).toEqual(["harbor.tgz"]);
  });

  test("casd_track refuses a symbolic link", () => {
    const l = path.join(dir, "link");
    fs.symlinkSync("/etc", l);
    const r = step(`casd_undo_begin j\nprintf x | casd_tfile ${shQuote(l)} 644 ${USER} ${GROUP}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `casd: error: ${l} is a symbolic link; this step manages plain files and directories only (remove the link or choose another path)\n`,
    );
  });
});
