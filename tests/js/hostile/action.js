/**
 * Hostile JavaScript, one case per `event.configuration.case` (tests/js_actions.rs): each must
 * end in a named error with no token, in bounded time and memory.
 */
exports.onExecutePostLogin = async (event, api) => {
  const ns = "https://example.com";
  switch (event.configuration.case) {
    case "loop":
      for (;;) {}
    case "bomb": {
      const hoard = [];
      for (let i = 0; ; i++) hoard.push(new Array(100000).fill(i));
    }
    case "recursion": {
      const deeper = (n) => deeper(n + 1) + 1;
      return deeper(0);
    }
    case "throw":
      throw new Error("boom from the action");
    case "bigint":
      api.idToken.setCustomClaim(`${ns}/big`, 10n);
      return;
    case "cyclic": {
      const a = {};
      a.self = a;
      api.idToken.setCustomClaim(`${ns}/cyclic`, a);
      return;
    }
    case "never":
      await new Promise(() => {});
      return;
    case "unawaited":
      // A claim that fails in a promise the action did not await fails the login.
      Promise.resolve().then(() => api.idToken.setCustomClaim(`${ns}/late`, 10n));
      api.idToken.setCustomClaim(`${ns}/early`, 1);
      return;
    case "leak": {
      // State a login tries to leave for the next one: a global and a prototype change.
      globalThis.logins = (globalThis.logins || 0) + 1;
      const seen = {}.leaked === true;
      Object.prototype.leaked = true;
      api.idToken.setCustomClaim(`${ns}/state`, { logins: globalThis.logins, saw_prototype: seen });
      return;
    }
  }
};
