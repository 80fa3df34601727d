// Node.js peer of `claimsmith serve` for the hook-server benchmark (benches/serve/main.rs): an
// HTTP server (node:http, built-in modules only) answering Ory Hydra's token hook with the same
// Auth0 post-login Action as claimsmith's add-roles rule (../peer/add-roles.js).
//
// Each POST does the work claimsmith's Hydra hook does (server/src/hook/hydra.rs): read the
// body, JSON.parse it, turn Hydra's session and token request into an Auth0-like `event` (the
// same mapping: user from the subject and the OIDC claims under `id_token_claims.ext`, client,
// requested scopes, protocol, the token request's form, the issuer's current claims; Hydra
// sends no roles, so `authorization.roles` is empty, as in claimsmith's event), run
// `onExecutePostLogin(event, api)` and await it, then answer as claimsmith does: 200
// {"session":{"access_token":{..},"id_token":{..}}} with the complete claim maps (seeded from
// `session.extra` and `id_token_claims.ext`, the action's claims added), 204 when nothing
// changed, 403 when the action denies. Two modes:
//
//   fresh_vm        a new `vm` context per request (isolation between logins comparable to a
//                   fresh wasm instance, as Auth0 Actions need); the action is compiled once
//                   into a vm.Script and run in each new context to define its exports.
//   shared_context  one context created once, reused by every request (no isolation).
//
// Usage: node node-hook.mjs --mode MODE [--port PORT] [--host HOST] [--config-json JSON]
// --port 0 (the default) takes a free port; once listening it prints
// `listening on http://HOST:PORT` on stderr, as `claimsmith serve` does. --config-json is the
// action's `event.configuration` (default {"namespace":"https://example.com"}).

import fs from "node:fs";
import http from "node:http";
import process from "node:process";
import vm from "node:vm";

const ACTION_URL = new URL("../peer/add-roles.js", import.meta.url);
const MODES = ["fresh_vm", "shared_context"];

function fail(message) {
  console.error(`node-hook: ${message}`);
  process.exit(1);
}

function parseArgs(argv) {
  const usage =
    "usage: node node-hook.mjs --mode fresh_vm|shared_context [--port PORT] [--host HOST] [--config-json JSON]";
  const args = { port: "0", host: "127.0.0.1", "config-json": '{"namespace":"https://example.com"}' };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (!["--mode", "--port", "--host", "--config-json"].includes(flag) || value === undefined) {
      fail(`bad argument ${JSON.stringify(flag)}\n${usage}`);
    }
    args[flag.slice(2)] = value;
  }
  if (!MODES.includes(args.mode)) fail(`--mode is ${MODES.join(" or ")}\n${usage}`);
  const port = Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number`);
  let configuration;
  try {
    configuration = JSON.parse(args["config-json"]);
  } catch (err) {
    fail(`--config-json: ${err.message}`);
  }
  return { mode: args.mode, port, host: args.host, configuration };
}

// ---- The action, per mode ------------------------------------------------------------------

function newContext() {
  const exports = {};
  const module = { exports };
  return { context: vm.createContext({ exports, module }), module };
}

function defineAction(script, context, module) {
  script.runInContext(context);
  return module.exports.onExecutePostLogin;
}

// A function giving the action to run for one request.
function actionFor(mode, script) {
  if (mode === "fresh_vm") {
    return () => {
      const { context, module } = newContext();
      return defineAction(script, context, module);
    };
  }
  const { context, module } = newContext();
  const shared = defineAction(script, context, module);
  return () => shared;
}

// ---- Hydra's request -> event (as server/src/hook/hydra.rs) --------------------------------

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const nonEmpty = (s) => (typeof s === "string" && s !== "" ? s : undefined);
const firstStr = (v) => (Array.isArray(v) ? v.find((s) => nonEmpty(s)) : nonEmpty(v));
const strings = (v) => (Array.isArray(v) ? v.filter((s) => typeof s === "string") : undefined);

const PROTOCOLS = {
  authorization_code: "oidc-basic-profile",
  refresh_token: "oauth2-refresh-token",
  password: "oauth2-password",
  client_credentials: "oauth2-client-credentials",
};

// The standard OIDC profile claims into the user (what claimsmith's profile_from_claims does).
function profileFromClaims(user, claims) {
  for (const key of ["email", "name", "nickname", "given_name", "family_name", "picture", "phone_number"]) {
    const value = nonEmpty(claims[key]);
    if (value !== undefined && user[key] === undefined) user[key] = value;
  }
  const flag = (v) => v === true || v === "true";
  if (flag(claims.email_verified)) user.email_verified = true;
  if (flag(claims.phone_number_verified)) user.phone_verified = true;
  if (typeof claims.updated_at === "number") user.updated_at = new Date(claims.updated_at * 1000).toISOString();
  else if (nonEmpty(claims.updated_at)) user.updated_at = claims.updated_at;
  if (Array.isArray(claims.groups)) user.groups = claims.groups.filter((g) => typeof g === "string");
}

// The event and what the response is seeded from; throws a message for a 400.
function hydraEvent(root, configuration) {
  if (!isObject(root)) throw "request body must be a JSON object";
  const session = root.session;
  if (!isObject(session)) throw "request field `session` is required";
  const request = isObject(root.request) ? root.request : isObject(root.requester) ? root.requester : {};
  const idToken = isObject(session.id_token) ? session.id_token : {};
  const claims = isObject(idToken.id_token_claims) ? idToken.id_token_claims : {};
  const idExt = isObject(claims.ext) ? claims.ext : {};
  const idFixed = {};
  for (const [name, value] of Object.entries(claims)) {
    const empty = value === null || value === "" || (Array.isArray(value) && value.length === 0);
    if (name !== "ext" && !empty) idFixed[name] = value;
  }
  const access = isObject(session.extra) ? session.extra : {};
  const clientId =
    nonEmpty(request.client_id) ?? nonEmpty(root.client_id) ?? nonEmpty(session.client_id) ?? firstStr(idFixed.aud) ?? "hydra";
  const subject = nonEmpty(idToken.subject) ?? nonEmpty(claims.sub) ?? nonEmpty(root.subject);
  const user = { user_id: subject ?? clientId, email_verified: false, app_metadata: {}, user_metadata: {} };
  profileFromClaims(user, idExt);
  const client = { client_id: clientId, metadata: {} };
  if (isObject(request.client)) {
    client.name = nonEmpty(request.client.client_name);
    client.metadata = isObject(request.client.metadata) ? request.client.metadata : {};
  }
  const requested =
    strings(request.requested_scopes) ?? strings(request.granted_scopes) ?? strings(root.granted_scopes) ?? [];
  const audience = strings(request.granted_audience) ?? strings(root.granted_audience) ?? [];
  const grant = (strings(request.grant_types) ?? [])[0];
  const query = {};
  if (isObject(request.payload)) {
    for (const [name, values] of Object.entries(request.payload)) {
      query[name] = Array.isArray(values) && values.length === 1 ? values[0] : values;
    }
  }
  const event = {
    user,
    client,
    connection: { name: "" },
    authorization: { roles: [], permissions: [] },
    transaction: {
      requested_scopes: requested,
      protocol: grant === undefined ? undefined : (PROTOCOLS[grant] ?? grant),
      nonce: firstStr(idFixed.nonce),
    },
    request: { method: "POST", query },
    issuer_claims: { id_token: { ...idFixed, ...idExt }, access_token: { ...access } },
    configuration,
    secrets: {},
  };
  const resource = audience.find((a) => a !== "");
  if (resource !== undefined) event.resource_server = { identifier: resource };
  if (Array.isArray(idFixed.amr)) {
    const authTime = typeof idFixed.auth_time === "number" ? idFixed.auth_time : undefined;
    event.authentication = {
      methods: idFixed.amr.filter((m) => typeof m === "string").map((name) => ({ name, auth_time: authTime })),
    };
  }
  return { event, access, idExt };
}

// ---- The response --------------------------------------------------------------------------

function newApi(result) {
  const token = (claims) => ({
    setCustomClaim(name, value) {
      claims[name] = value;
    },
  });
  return {
    idToken: token(result.id),
    accessToken: token(result.access),
    access: {
      deny(reason) {
        result.denied = String(reason);
      },
    },
  };
}

function send(res, status, body) {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function answer(action, configuration, body, res) {
  let root;
  try {
    root = JSON.parse(body);
  } catch (err) {
    return send(res, 400, { error: "invalid_request", error_description: `request body is not JSON: ${err.message}` });
  }
  let mapped;
  try {
    mapped = hydraEvent(root, configuration);
  } catch (message) {
    return send(res, 400, { error: "invalid_request", error_description: String(message) });
  }
  const result = { id: {}, access: {}, denied: undefined };
  try {
    await action()(mapped.event, newApi(result));
  } catch (err) {
    return send(res, 500, { error: "server_error", error_description: `the action failed: ${err}` });
  }
  if (result.denied !== undefined) {
    return send(res, 403, { error: "access_denied", error_description: result.denied });
  }
  const access = { ...mapped.access, ...result.access };
  const id = { ...mapped.idExt, ...result.id };
  if (JSON.stringify(access) === JSON.stringify(mapped.access) && JSON.stringify(id) === JSON.stringify(mapped.idExt)) {
    return send(res, 204);
  }
  return send(res, 200, { session: { access_token: access, id_token: id } });
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const script = new vm.Script(fs.readFileSync(ACTION_URL, "utf8"), { filename: ACTION_URL.pathname });
  const action = actionFor(args.mode, script);
  const server = http.createServer((req, res) => {
    if (req.method !== "POST") return send(res, 405, { error: "method_not_allowed" });
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      answer(action, args.configuration, Buffer.concat(chunks).toString("utf8"), res).catch((err) =>
        send(res, 500, { error: "server_error", error_description: String(err) }),
      );
    });
  });
  // The benchmark's connections stay open between its turns.
  server.keepAliveTimeout = 120_000;
  server.listen(args.port, args.host, () => {
    const { address, port } = server.address();
    console.error(`listening on http://${address}:${port}`);
  });
}

main();
