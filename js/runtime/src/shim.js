// The claimsmith JavaScript shim: the Auth0 `event`/`api` surface over the guest ABI version 1.
//
// Evaluated once per module, before the action. It defines `__claimsmith_load(fn)`, which runs
// the action's wrapper function (CommonJS style: `exports`, `module`, `require`), and
// `__claimsmith_run(event)`, which takes the input document (parsed by the runtime), runs `onExecutePostLogin` and
// resolves to the result document `{"commands":[...]}` as a string. Commands are serialised
// when the action calls the API, so a value that JSON cannot carry fails at that call.
(function () {
  'use strict';
  const global = globalThis;
  const stringify = JSON.stringify;

  class UnsupportedApiError extends Error {
    constructor(what) {
      super(what + ' is not supported by claimsmith: a rule has no network, no cache and no npm packages (see docs/writing-rules.md)');
      this.name = 'UnsupportedApiError';
    }
  }

  function str(what, value) {
    if (typeof value !== 'string') {
      throw new TypeError(what + ': expected a string, got ' + (value === null ? 'null' : typeof value));
    }
    return stringify(value);
  }

  function json(what, value) {
    let text;
    try {
      text = stringify(value);
    } catch (e) {
      throw new TypeError(what + ': the value cannot be serialised to JSON (' + e.message + ')');
    }
    if (text === undefined) {
      throw new TypeError(what + ': the value cannot be serialised to JSON (' + typeof value + ')');
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

  let commands = null;
  function push(command) {
    if (commands === null) {
      throw new Error('the claimsmith api was used outside onExecutePostLogin');
    }
    commands.push(command);
  }
  function log(level) {
    return function () {
      push('{"op":"log","level":"' + level + '","message":' + stringify(text(arguments)) + '}');
    };
  }

  global.console = {
    log: log('info'),
    info: log('info'),
    debug: log('debug'),
    trace: log('trace'),
    warn: log('warn'),
    error: log('error'),
  };
  global.require = function (name) {
    throw new UnsupportedApiError('require(' + stringify(String(name)) + ')');
  };
  global.fetch = function () {
    throw new UnsupportedApiError('fetch()');
  };

  function tokenApi(token, withScopes) {
    const api = {
      setCustomClaim(name, value) {
        const what = 'api.' + (token === 'id_token' ? 'idToken' : 'accessToken') + '.setCustomClaim(' + stringify(String(name)) + ')';
        push('{"op":"set_claim","token":"' + token + '","name":' + str(what, name) + ',"value":' + json(what, value) + '}');
        return this;
      },
    };
    if (withScopes) {
      api.addScope = function (scope) {
        push('{"op":"add_scope","scope":' + str('api.accessToken.addScope', scope) + '}');
        return this;
      };
      api.removeScope = function (scope) {
        push('{"op":"remove_scope","scope":' + str('api.accessToken.removeScope', scope) + '}');
        return this;
      };
    }
    return api;
  }

  function metadata(op, what) {
    return function (key, value) {
      const shown = what + '(' + stringify(String(key)) + ')';
      push('{"op":"' + op + '","key":' + str(shown, key) + ',"value":' + json(shown, value === undefined ? null : value) + '}');
      return this;
    };
  }

  function makeApi() {
    const api = {
      idToken: tokenApi('id_token', false),
      accessToken: tokenApi('access_token', true),
      access: {
        deny(reason) {
          push('{"op":"deny","reason":' + stringify(reason === undefined ? 'denied' : String(reason)) + '}');
          return this;
        },
      },
      user: {
        setAppMetadata: metadata('set_app_metadata', 'api.user.setAppMetadata'),
        setUserMetadata: metadata('set_user_metadata', 'api.user.setUserMetadata'),
      },
      multifactor: {
        enable(provider) {
          push('{"op":"enable_mfa","provider":' + str('api.multifactor.enable', provider) + '}');
          return this;
        },
      },
    };
    unsupported(api, 'redirect', 'api.redirect');
    unsupported(api, 'cache', 'api.cache');
    unsupported(api, 'samlResponse', 'api.samlResponse');
    unsupported(api, 'authentication', 'api.authentication');
    return api;
  }

  function object(value) {
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
  }
  function array(value) {
    return Array.isArray(value) ? value : [];
  }

  // Defaults for the parts of the event an action reads without checking, as Auth0 sends them.
  function withDefaults(event) {
    event.user = object(event.user);
    event.user.app_metadata = object(event.user.app_metadata);
    event.user.user_metadata = object(event.user.user_metadata);
    event.user.groups = array(event.user.groups);
    event.authorization = object(event.authorization);
    event.authorization.roles = array(event.authorization.roles);
    event.authorization.permissions = array(event.authorization.permissions);
    event.client = object(event.client);
    event.client.metadata = object(event.client.metadata);
    event.connection = object(event.connection);
    event.connection.metadata = object(event.connection.metadata);
    event.request = object(event.request);
    event.request.query = object(event.request.query);
    event.transaction = object(event.transaction);
    event.transaction.requested_scopes = array(event.transaction.requested_scopes);
    event.transaction.acr_values = array(event.transaction.acr_values);
    event.stats = object(event.stats);
    if (typeof event.stats.logins_count !== 'number') event.stats.logins_count = 0;
    event.issuer_claims = object(event.issuer_claims);
    event.configuration = object(event.configuration);
    event.secrets = object(event.secrets);
    return event;
  }

  let handler = null;
  let api = null;
  global.__claimsmith_load = function (wrapper) {
    // Built once, before the snapshot: every login starts from a fresh copy of it.
    api = makeApi();
    const module = { exports: {} };
    wrapper.call(module.exports, module.exports, module, global.require);
    handler = module.exports.onExecutePostLogin;
    if (typeof handler !== 'function') {
      throw new TypeError('the action does not export onExecutePostLogin (exports.onExecutePostLogin = async (event, api) => { ... })');
    }
  };
  global.__claimsmith_run = function (event) {
    commands = [];
    const mine = commands;
    let settled;
    try {
      settled = Promise.resolve(handler(withDefaults(event), api));
    } catch (e) {
      settled = Promise.reject(e);
    }
    return settled.then(
      function () { return '{"commands":[' + mine.join(',') + ']}'; },
      function (e) { throw describe(e); },
    );
  };
})();
