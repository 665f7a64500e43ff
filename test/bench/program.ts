/**
 * Benchmark (not a test): the median time and peak memory of evaluating the
 * whole program under mocks, for the dev stack. Each sample is a fresh
 * process, so module loading is part of what a sample pays only once
 * (it is measured separately as "process"). Figures, not assertions: the
 * machines are shared and noisy.
 *
 *   npm run bench            # 7 samples
 *   npm run bench -- 15      # 15 samples
 */
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { devStack } from "../support/stack";

export interface Sample {
  ms: number;
  maxRssMiB: number;
  resources: number;
  processMs: number;
}

export function evaluate(stack: {
  config: Record<string, unknown>;
  secrets: Record<string, string>;
}): Sample {
  const t0 = process.hrtime.bigint();
  const out = execFileSync(
    process.execPath,
    [require.resolve("ts-node/dist/bin"), "--transpile-only", path.join(__dirname, "evaluate.ts")],
    {
      env: { ...process.env, CASD_BENCH_STACK: JSON.stringify(stack) },
      encoding: "utf8",
      maxBuffer: 1 << 20,
    },
  );
  const processMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ...(JSON.parse(out.trim().split("\n").pop()!) as Omit<Sample, "processMs">), processMs };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function main(): void {
  const n = Number(process.argv[2] ?? 7);
  const samples: Sample[] = [];
  for (let i = 0; i < n; i++) samples.push(evaluate(devStack()));
  const fmt = (x: number) => x.toFixed(1);
  console.log(
    `program under mocks, dev stack, ${n} samples (${samples[0].resources} resources each)`,
  );
  console.log(
    `  evaluation median ${fmt(median(samples.map((s) => s.ms)))} ms (min ${fmt(Math.min(...samples.map((s) => s.ms)))}, max ${fmt(Math.max(...samples.map((s) => s.ms)))})`,
  );
  console.log(`  whole process median ${fmt(median(samples.map((s) => s.processMs)))} ms`);
  console.log(
    `  peak RSS median ${fmt(median(samples.map((s) => s.maxRssMiB)))} MiB (max ${fmt(Math.max(...samples.map((s) => s.maxRssMiB)))})`,
  );
}

if (require.main === module) main();
