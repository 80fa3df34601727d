// Node.js peer for the claimsmith benchmark: how long one post-login takes when the
// same "add-roles" action (./add-roles.js) runs the way Auth0 Actions run it, in Node.js.
//
// Every login does the work the wasm engine does per login: JSON.parse the input event
// (with `configuration` and `secrets` members), run `onExecutePostLogin(event, api)` and
// await it, collect the api calls as commands, and JSON.stringify
// {"commands":[{"op":"set_claim",...},...]}. Two modes:
//
//   fresh_vm        a new `vm` context per login (isolation comparable to a fresh wasm
//                   instance); the action is compiled once into a cached vm.Script and
//                   run in each new context to define its exports.
//   shared_context  one context created once and reused by every login (no isolation
//                   between logins): the floor of what Node.js can do.
//
// Each login is timed on its own with process.hrtime.bigint(); after a warmup, the
// p50/p90/p99 of the timed logins are printed as one JSON line on stdout.
//
// Usage: node node-peer.mjs --event FILE --config-json JSON [--mode MODE]
//                           [--iterations N | --serve] [--warmup W]
// --iterations/--warmup apply to each mode; the defaults are 2000/200 logins for
// fresh_vm and 20000/2000 for shared_context. --mode runs one mode only; without it both
// run, one after the other. Measure each mode in a process of its own: a process that has
// run fresh contexts runs the shared one slower (15.6-16.1 us a login against 9.1-10.9 us
// in one that has not, on this project's machine). Built-in modules only.
//
// With --serve instead of --iterations, the logins of one --mode run in batches on request,
// so that the harness (benches/peer/main.rs) can interleave them with its own and every
// runtime meets the machine's same slow and fast phases. After the mode is checked and warmed
// up it prints {"ready":true,"node_version":..}; then for each line "MODE N" on stdin it times
// N logins (after N/20 more, untimed, to warm its caches again after the harness's turn) and
// prints {"mode":..,"ns":[..]}, one duration per login, in nanoseconds. It exits at the end of
// stdin.

import fs from "node:fs";
import process from "node:process";
import readline from "node:readline";
import vm from "node:vm";

const ACTION_URL = new URL("./add-roles.js", import.meta.url);
const DEFAULT_NAMESPACE = "https://example.com";
const DEFAULTS = {
  fresh_vm: { iterations: 2000, warmup: 200 },
  shared_context: { iterations: 20000, warmup: 2000 },
};

function fail(message) {
  console.error(`node-peer: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const usage =
    "usage: node node-peer.mjs --event FILE --config-json JSON [--mode MODE] [--iterations N | --serve] [--warmup W]";
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === "--serve") {
      args.serve = true;
      i -= 1;
      continue;
    }
    const [flag, value] = [argv[i], argv[i + 1]];
    if (!["--event", "--config-json", "--mode", "--iterations", "--warmup"].includes(flag) || value === undefined) {
      fail(`bad argument ${JSON.stringify(flag)}\n${usage}`);
    }
    args[flag.slice(2)] = value;
  }
  if (args.event === undefined || args["config-json"] === undefined) fail(usage);
  if (args.serve && args.iterations !== undefined) fail(`--serve takes no --iterations\n${usage}`);
  if (args.serve && args.mode === undefined) fail(`--serve serves one --mode\n${usage}`);
  if (args.mode !== undefined && !Object.hasOwn(DEFAULTS, args.mode)) {
    fail(`--mode is ${Object.keys(DEFAULTS).join(" or ")}, not ${JSON.stringify(args.mode)}`);
  }
  for (const name of ["iterations", "warmup"]) {
    if (args[name] === undefined) continue;
    const n = Number(args[name]);
    if (!Number.isInteger(n) || n < (name === "iterations" ? 1 : 0)) fail(`--${name} must be a count`);
    args[name] = n;
  }
  return args;
}

// A fresh Auth0-style `api` whose calls are recorded as claimsmith commands.
function newApi(commands) {
  const token = (name) => ({
    setCustomClaim(claim, value) {
      commands.push({ op: "set_claim", token: name, name: claim, value });
    },
  });
  return { idToken: token("id_token"), accessToken: token("access_token") };
}

// One login against an already defined action: parse, run, serialize.
async function login(onExecutePostLogin, input) {
  const event = JSON.parse(input);
  const commands = [];
  await onExecutePostLogin(event, newApi(commands));
  return JSON.stringify({ commands });
}

// Define the action's exports in `context` by running the cached compiled script there.
function defineAction(script, context, module) {
  script.runInContext(context);
  return module.exports.onExecutePostLogin;
}

function newContext() {
  const exports = {};
  const module = { exports };
  return { context: vm.createContext({ exports, module }), module };
}

function freshVmLogin(script) {
  return async (input) => {
    const { context, module } = newContext();
    return login(defineAction(script, context, module), input);
  };
}

function sharedContextLogin(script) {
  const { context, module } = newContext();
  const onExecutePostLogin = defineAction(script, context, module);
  return (input) => login(onExecutePostLogin, input);
}

// Fail unless the output carries the expected claim, with the event's roles, in both tokens.
function verify(mode, output, event, config) {
  const namespace = (config.namespace || DEFAULT_NAMESPACE).replace(/\/+$/, "");
  const expected = JSON.stringify({
    commands: ["id_token", "access_token"].map((token) => ({
      op: "set_claim",
      token,
      name: `${namespace}/roles`,
      value: event.authorization?.roles || [],
    })),
  });
  if (output !== expected) fail(`${mode}: got ${output}, expected ${expected}`);
}

// Nearest-rank percentile of sorted nanosecond samples, in microseconds (3 decimals).
function percentile(sortedNs, p) {
  const index = Math.min(sortedNs.length - 1, Math.ceil((p / 100) * sortedNs.length) - 1);
  return Number((Number(sortedNs[index]) / 1000).toFixed(3));
}

// Time `iterations` logins one by one: nanoseconds each.
async function timed(run, input, iterations) {
  const samples = new BigInt64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    await run(input);
    samples[i] = process.hrtime.bigint() - start;
  }
  return samples;
}

async function measure(run, input, iterations, warmup) {
  for (let i = 0; i < warmup; i++) await run(input);
  const samples = await timed(run, input, iterations);
  samples.sort();
  return {
    p50_us: percentile(samples, 50),
    p90_us: percentile(samples, 90),
    p99_us: percentile(samples, 99),
    iterations,
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let event, config;
  try {
    event = JSON.parse(fs.readFileSync(args.event, "utf8"));
    config = JSON.parse(args["config-json"]);
  } catch (err) {
    fail(err.message);
  }
  const input = JSON.stringify({ ...event, configuration: config, secrets: {} });
  const script = new vm.Script(fs.readFileSync(ACTION_URL, "utf8"), { filename: ACTION_URL.pathname });

  const all = { fresh_vm: () => freshVmLogin(script), shared_context: () => sharedContextLogin(script) };
  const modes = {};
  for (const mode of args.mode === undefined ? Object.keys(all) : [args.mode]) modes[mode] = all[mode]();
  for (const [mode, run] of Object.entries(modes)) verify(mode, await run(input), event, config);

  if (args.serve) {
    await serve(args.mode, modes[args.mode], input, args.warmup ?? DEFAULTS[args.mode].warmup);
    return;
  }

  const result = { node_version: process.version };
  for (const [mode, run] of Object.entries(modes)) {
    const iterations = args.iterations ?? DEFAULTS[mode].iterations;
    const warmup = args.warmup ?? DEFAULTS[mode].warmup;
    result[mode] = await measure(run, input, iterations, warmup);
  }
  console.log(JSON.stringify(result));
}

// Batches of one mode on request (see the top of this file).
async function serve(mode, run, input, warmup) {
  for (let i = 0; i < warmup; i++) await run(input);
  console.log(JSON.stringify({ ready: true, node_version: process.version }));
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const [asked, count] = line.trim().split(/\s+/);
    const n = Number(count);
    if (asked !== mode || !Number.isInteger(n) || n < 1) {
      fail(`bad request ${JSON.stringify(line)}: want "${mode} N"`);
    }
    for (let i = 0; i < Math.ceil(n / 20); i++) await run(input);
    const samples = await timed(run, input, n);
    console.log(JSON.stringify({ mode, ns: Array.from(samples, Number) }));
  }
}

await main();
