// The claimsmith JavaScript shim: the Auth0 `event`/`api` surface over the guest ABI version 5.
//
// Evaluated once per module, before the action. It defines `__claimsmith_load(fn)`, which runs
// the action's wrapper function (CommonJS style: `exports`, `module`, `require`) and hands the
// runtime `onExecutePostLogin`, the `api` object and the functions that settle a login into the
// result document `{"commands":[...]}`. The runtime builds the `event` (src/event.rs) and calls
// the handler. Commands are serialised when the action calls the API, so a value that JSON
// cannot carry fails at that call.
(function () {
  'use strict';
  const global = globalThis;
  const stringify = JSON.stringify;
  // The runtime's natives (src/commands.rs), kept here and taken off the global object: the
  // login's commands are collected in Rust, and `json` writes what JSON.stringify writes.
  const end = global.__claimsmith_end;
  const push = global.__claimsmith_push;
  const claimMethod = global.__claimsmith_claim_method;
  const nativeJson = global.__claimsmith_json;
  const hostLog = global.__claimsmith_log;
  for (const name of ['__claimsmith_end', '__claimsmith_push', '__claimsmith_claim_method', '__claimsmith_json', '__claimsmith_log']) {
    delete global[name];
  }

  class UnsupportedApiError extends Error {
    constructor(what) {
      super(what + ' is not supported by claimsmith: a rule has no network, no cache and no npm packages (see docs/writing-rules.md)');
      this.name = 'UnsupportedApiError';
    }
  }

  // `what` names the call in an error: a string, or a function that words it (built only when
  // the call fails: a login pays for every concatenation the interpreter runs).
  function named(what) {
    return typeof what === 'function' ? what() : what;
  }

  function str(what, value) {
    if (typeof value !== 'string') {
      throw new TypeError(named(what) + ': expected a string, got ' + (value === null ? 'null' : typeof value));
    }
    return nativeJson(value);
  }

  function json(what, value) {
    let text;
    try {
      text = nativeJson(value);
    } catch (e) {
      throw new TypeError(named(what) + ': the value cannot be serialised to JSON (' + e.message + ')');
    }
    if (text === undefined) {
      throw new TypeError(named(what) + ': the value cannot be serialised to JSON (' + typeof value + ')');
    }
    return text;
  }

  function unsupported(target, name, what) {
    Object.defineProperty(target, name, {
      get() { throw new UnsupportedApiError(what); },
      enumerable: false,
    });
  }

  // `Name: message (at action.js:LINE:COLUMN)`: the action's innermost frame, if any.
  function describe(value) {
    if (value instanceof Error) {
      let where = '';
      let stack;
      try { stack = value.stack; } catch (_) { stack = undefined; }
      if (typeof stack === 'string') {
        const frames = stack.split('\n');
        for (let i = 0; i < frames.length; i++) {
          const at = frames[i].indexOf('action.js:');
          if (at >= 0) {
            where = ' (at ' + frames[i].slice(at).replace(/[()\s]+$/, '') + ')';
            break;
          }
        }
      }
      return (value.name || 'Error') + ': ' + value.message + where;
    }
    try {
      return 'uncaught ' + json('throw', value);
    } catch (_) {
      return 'uncaught ' + String(value);
    }
  }

  function text(args) {
    const parts = [];
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (typeof arg === 'string') {
        parts.push(arg);
      } else if (arg instanceof Error) {
        parts.push(describe(arg));
      } else {
        let shown;
        try { shown = stringify(arg); } catch (_) { shown = undefined; }
        parts.push(shown === undefined ? String(arg) : shown);
      }
    }
    return parts.join(' ');
  }

  // A console line goes to the host at once (the `claimsmith::log` import: 0 trace to 4 error),
  // so that it is kept when the action fails afterwards.
  function log(level) {
    return function () {
      hostLog(level, text(arguments));
    };
  }

  global.console = {
    log: log(2),
    info: log(2),
    debug: log(1),
    trace: log(0),
    warn: log(3),
    error: log(4),
  };

  // Boa is built without Intl: `toLocale*String` ignores its locale and options and gives
  // `toString()`'s text in UTC. What an action asks of them (a time zone, an hour of the day, a
  // locale's format) would be silently wrong (a business-hours check off by hours, or NaN), so
  // any locale or option fails the rule instead; with neither it is the plain text, for logs.
  for (const name of ['toLocaleString', 'toLocaleDateString', 'toLocaleTimeString']) {
    const original = Date.prototype[name];
    Object.defineProperty(Date.prototype, name, {
      value: function (locales, options) {
        if (locales !== undefined || options !== undefined) {
          throw new UnsupportedApiError('Date.prototype.' + name + ' with a locale or options (Intl)');
        }
        return original.call(this);
      },
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
  global.require = function (name) {
    throw new UnsupportedApiError('require(' + stringify(String(name)) + ')');
  };
  global.fetch = function () {
    throw new UnsupportedApiError('fetch()');
  };

  // Every method returns the root `api`, as Auth0's do ("Returns a reference to the api
  // object"), so that calls chain across namespaces.
  function tokenApi(token, withScopes, root) {
    const head = '{"op":"set_claim","token":"' + token + '","name":';
    const api = {
      // A native function: the usual call writes its command in Rust and runs no JavaScript;
      // what it does not take (a value that is not plain data, a name that is not a string, a
      // closed API, `undefined`) is written, or its error worded, here.
      setCustomClaim: claimMethod(token, function (name, value) {
        const what = () => 'api.' + (token === 'id_token' ? 'idToken' : 'accessToken') + '.setCustomClaim(' + stringify(String(name)) + ')';
        const claim = str(what, name);
        if (value === undefined) {
          // Auth0 serialises the token's claims as JSON, which leaves an undefined one out: the
          // claim is not set (`event.user.app_metadata.missing` gives no claim, not a failure).
          hostLog(1, what() + ': the value is undefined, so no claim is set');
          return;
        }
        push(head + claim + ',"value":' + json(what, value) + '}');
      }, root),
    };
    if (withScopes) {
      api.addScope = function (scope) {
        push('{"op":"add_scope","scope":' + str('api.accessToken.addScope', scope) + '}');
        return root;
      };
      api.removeScope = function (scope) {
        push('{"op":"remove_scope","scope":' + str('api.accessToken.removeScope', scope) + '}');
        return root;
      };
    }
    return api;
  }

  function metadata(op, what, root) {
    return function (key, value) {
      const shown = () => what + '(' + stringify(String(key)) + ')';
      push('{"op":"' + op + '","key":' + str(shown, key) + ',"value":' + json(shown, value === undefined ? null : value) + '}');
      return root;
    };
  }

  function makeApi() {
    const api = {};
    Object.assign(api, {
      idToken: tokenApi('id_token', false, api),
      accessToken: tokenApi('access_token', true, api),
      access: {
        deny(reason) {
          push('{"op":"deny","reason":' + stringify(reason === undefined ? 'denied' : String(reason)) + '}');
          return api;
        },
      },
      user: {
        setAppMetadata: metadata('set_app_metadata', 'api.user.setAppMetadata', api),
        setUserMetadata: metadata('set_user_metadata', 'api.user.setUserMetadata', api),
      },
      multifactor: {
        enable(provider, options) {
          const what = 'api.multifactor.enable';
          let command = '{"op":"enable_mfa","provider":' + str(what, provider);
          if (options !== undefined && options !== null) {
            if (typeof options !== 'object') {
              throw new TypeError(what + ': options must be an object, got ' + typeof options);
            }
            if (options.allowRememberBrowser !== undefined && typeof options.allowRememberBrowser !== 'boolean') {
              throw new TypeError(what + ': allowRememberBrowser must be a boolean');
            }
            if (options.allowRememberBrowser === true) {
              command += ',"allow_remember_browser":true';
            }
          }
          push(command + '}');
          return api;
        },
      },
      authentication: {
        challengeWith(factor, options) {
          const what = 'api.authentication.challengeWith';
          push('{"op":"challenge_with","factor":' + factorJson(what, factor) +
            ',"additional_factors":' + additionalFactors(what, options) + '}');
          return api;
        },
        challengeWithAny(factors) {
          const what = 'api.authentication.challengeWithAny';
          if (!Array.isArray(factors) || factors.length === 0) {
            throw new TypeError(what + ': expected a non-empty array of factors');
          }
          push('{"op":"challenge_with_any","factors":' + factorList(what, factors) + '}');
          return api;
        },
        enrollWith(factor, options) {
          const what = 'api.authentication.enrollWith';
          push('{"op":"enroll_with","factor":' + factorJson(what, factor) +
            ',"additional_factors":' + additionalFactors(what, options) + '}');
          return api;
        },
      },
      session: {
        setExpiresAt(absolute) {
          push('{"op":"set_session_expires_at","expires_at":' + epochMs('api.session.setExpiresAt', absolute) + '}');
          return api;
        },
        setIdleExpiresAt(absolute) {
          push('{"op":"set_session_idle_expires_at","idle_expires_at":' + epochMs('api.session.setIdleExpiresAt', absolute) + '}');
          return api;
        },
      },
    });
    unsupported(api, 'redirect', 'api.redirect');
    unsupported(api, 'cache', 'api.cache');
    unsupported(api, 'samlResponse', 'api.samlResponse');
    unsupported(api, 'prompt', 'api.prompt');
    unsupported(api.authentication, 'enrollWithAny', 'api.authentication.enrollWithAny');
    unsupported(api.authentication, 'recordMethod', 'api.authentication.recordMethod');
    unsupported(api.authentication, 'setPrimaryUser', 'api.authentication.setPrimaryUser');
    unsupported(api.session, 'revoke', 'api.session.revoke');
    unsupported(api, 'refreshToken', 'api.refreshToken');
    unsupported(api, 'rules', 'api.rules');
    return api;
  }

  // An Auth0 factor, `{ type, options }`, as the host's JSON; anything else fails at the call.
  function factorJson(what, factor) {
    if (factor === null || typeof factor !== 'object' || Array.isArray(factor)) {
      throw new TypeError(what + ': a factor is an object such as { type: "otp" }');
    }
    for (const key in factor) {
      if (key !== 'type' && key !== 'options') {
        throw new TypeError(what + ': a factor has only `type` and `options`, not `' + key + '`');
      }
    }
    let text = '{"type":' + str(what + ': the factor\'s type', factor.type);
    if (factor.options !== undefined) {
      if (factor.options === null || typeof factor.options !== 'object' || Array.isArray(factor.options)) {
        throw new TypeError(what + ': a factor\'s options are an object');
      }
      text += ',"options":' + json(what, factor.options);
    }
    return text + '}';
  }
  function factorList(what, factors) {
    const parts = [];
    for (let i = 0; i < factors.length; i++) parts.push(factorJson(what, factors[i]));
    return '[' + parts.join(',') + ']';
  }
  function additionalFactors(what, options) {
    if (options === undefined || options === null) return '[]';
    if (typeof options !== 'object') {
      throw new TypeError(what + ': options must be an object, got ' + typeof options);
    }
    const extra = options.additionalFactors;
    if (extra === undefined) return '[]';
    if (!Array.isArray(extra)) {
      throw new TypeError(what + ': additionalFactors must be an array of factors');
    }
    return factorList(what, extra);
  }
  // Milliseconds since the epoch, as Auth0 takes them (a Date is accepted too).
  function epochMs(what, value) {
    const ms = value instanceof Date ? value.getTime() : value;
    if (typeof ms !== 'number' || !isFinite(ms) || ms <= 0) {
      throw new TypeError(what + ': expected milliseconds since the epoch, got ' + (value === null ? 'null' : typeof value === 'number' ? String(value) : typeof value));
    }
    return String(Math.floor(ms));
  }

  // A rejected login: the API closed, and the error's words thrown to the runtime.
  function rejected(e) {
    end();
    throw describe(e);
  }
  // Runs the action's module (before the snapshot) and gives the runtime what a login calls:
  // `[onExecutePostLogin, api, rejected]`. The runtime calls the handler itself, runs the jobs and
  // reads its promise (src/lib.rs, `run`): fulfilled, the result document is the commands
  // collected; rejected, `rejected` words the error.
  global.__claimsmith_load = function (wrapper) {
    // Called once, by the runtime, before the action runs: not the action's to call.
    delete global.__claimsmith_load;
    // Built once, before the snapshot: every login starts from a fresh copy of it.
    const api = makeApi();
    const module = { exports: {} };
    wrapper.call(module.exports, module.exports, module, global.require);
    const handler = module.exports.onExecutePostLogin;
    if (typeof handler !== 'function') {
      throw new TypeError('the action does not export onExecutePostLogin (exports.onExecutePostLogin = async (event, api) => { ... })');
    }
    return [handler, api, rejected];
  };
})();
