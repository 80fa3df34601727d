/**
 * The Auth0 surface claimsmith supports, one case per `event.configuration.case`
 * (tests/js_actions.rs): every `api` item, `event.*`, `event.secrets`, `console.log`, promises,
 * and the unsupported APIs reached at run time.
 */
const later = (value) => new Promise((resolve) => resolve(value));

exports.onExecutePostLogin = async (event, api) => {
  const ns = event.configuration.namespace;
  switch (event.configuration.case) {
    case "all": {
      const email = await later(event.user.email);
      api.idToken.setCustomClaim(`${ns}/email`, email);
      api.idToken.setCustomClaim(`${ns}/tenant`, event.user.app_metadata.tenant);
      api.accessToken.setCustomClaim(`${ns}/roles`, event.authorization.roles);
      api.accessToken.setCustomClaim(`${ns}/client`, event.client.client_id);
      api.accessToken.setCustomClaim(`${ns}/logins`, event.stats.logins_count);
      api.accessToken.setCustomClaim(`${ns}/has_key`, event.secrets.api_key === "s3cr3t-value");
      api.accessToken.addScope("read:reports");
      api.accessToken.removeScope("email");
      api.user.setAppMetadata("last_client", event.client.client_id);
      api.user.setUserMetadata("theme", "dark");
      api.multifactor.enable("any");
      console.log("hello", { user: event.user.user_id }, 42);
      console.warn("careful");
      return;
    }
    case "defaults":
      // An event with only a user id: the fields an action reads without checking are there.
      api.idToken.setCustomClaim(`${ns}/shape`, [
        event.authorization.roles.length,
        event.user.app_metadata,
        event.transaction.requested_scopes.length,
        event.stats.logins_count,
      ]);
      return;
    case "deny":
      api.access.deny("not from this client");
      return;
    case "redirect":
      api["redi" + "rect"].sendUserTo("https://example.com");
      return;
    case "cache":
      api["ca" + "che"].get("k");
      return;
    case "require":
      globalThis["req" + "uire"]("axios");
      return;
    case "fetch":
      await globalThis["fe" + "tch"]("https://example.com");
      return;
    case "clock": {
      // The login's time, the same instant however often it is read, and after an await.
      const first = Date.now();
      const date = new Date();
      await later(null);
      api.idToken.setCustomClaim(`${ns}/now`, first);
      api.idToken.setCustomClaim(`${ns}/iso`, date.toISOString());
      api.idToken.setCustomClaim(`${ns}/same`, Date.now() === first && date.getTime() === first);
      api.idToken.setCustomClaim(`${ns}/tenant_id`, event.tenant.id);
      api.idToken.setCustomClaim(`${ns}/session`, event.session ? event.session.id : null);
      return;
    }
    case "factors":
      api.multifactor.enable("guardian", { allowRememberBrowser: true });
      api.authentication.challengeWith(
        { type: "phone", options: { preferredMethod: "voice" } },
        { additionalFactors: [{ type: "otp" }] },
      );
      api.authentication.challengeWithAny([{ type: "email" }, { type: "webauthn-roaming" }]);
      api.authentication.enrollWith({ type: "otp" });
      api.session.setExpiresAt(Date.now() + 3600000);
      api.session.setIdleExpiresAt(new Date(Date.now() + 60000));
      return;
    case "bad-factor":
      api.authentication.challengeWith({ type: "otp", option: {} });
      return;
    case "enroll-with-any":
      api.authentication["enroll" + "WithAny"]([{ type: "otp" }]);
      return;
    case "json": {
      // Each value as a claim beside JSON.stringify's own text of it: the runtime writes the
      // JSON of plain values itself, and must write what JSON.stringify writes.
      class Point {
        constructor() { this.x = 1; this.y = undefined; }
        toJSON(key) { return { x: this.x, key }; }
      }
      const withGetter = { get computed() { return "got"; }, plain: 1 };
      Object.defineProperty(withGetter, "hidden", { value: 2, enumerable: false });
      const holes = [1, , 3];
      holes.extra = "not an index";
      const values = {
        text: "quote \" backslash \\ newline \n tab \t control \u0001 del \u007f é 🎉",
        numbers: [0, -0, 1, -1, 0.1, 1e-7, 123456789012, 2 ** 53 + 2, 1e21, 1.5e300, NaN, Infinity, -Infinity],
        literals: [true, false, null],
        nested: { b: [1, { c: "d" }], a: {}, "2": "two", "1": "one", skip: undefined, fn() {}, [Symbol("s")]: 1 },
        sparse: holes,
        odd: [undefined, () => 1, Symbol("t")],
        date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
        boxed: [new Number(4), new String("s"), new Boolean(false)],
        map: new Map([["k", "v"]]),
        point: new Point(),
        getter: withGetter,
        inPoint: { here: new Point() },
        raw: JSON.rawJSON ? JSON.rawJSON("12345678901234567890") : 12345678901234567890,
        empty: [[], {}],
        big: [2 ** 53, 2 ** 53 + 2, 2 ** 60, 2 ** 63, -(2 ** 63), 1234567890123456789, 1e17 + 2],
        toJsonDate: { a: { toJSON() { return new Date(0); } } },
      };
      for (const name of Object.keys(values)) {
        api.idToken.setCustomClaim(`${ns}/value/${name}`, values[name]);
        api.idToken.setCustomClaim(`${ns}/text/${name}`, JSON.stringify(values[name]));
        api.user.setAppMetadata(name, values[name]);
      }
      api.idToken.setCustomClaim(`${ns}/string`, "plain");
      // A getter runs once per call, as in JSON.stringify, whichever writer writes the value.
      let runs = 0;
      api.idToken.setCustomClaim(`${ns}/counted`, { get a() { runs += 1; return runs; } });
      api.idToken.setCustomClaim(`${ns}/runs`, runs);
      return;
    }
    case "lazy": {
      // The event's members are built when first read; the event looks built whole.
      const keys = Object.keys(event);
      const text = JSON.stringify(event);
      const same = event.user === event.user && event.authorization.roles === event.authorization.roles;
      const described = Object.getOwnPropertyDescriptor(event, "user");
      const copy = { ...event };
      event.client = { client_id: "assigned" };
      delete event.request;
      const frozen = Object.freeze(event);
      api.idToken.setCustomClaim(`${ns}/keys`, keys);
      api.idToken.setCustomClaim(`${ns}/text`, text);
      api.idToken.setCustomClaim(`${ns}/same`, same && frozen.stats === event.stats && frozen.user === copy.user);
      api.idToken.setCustomClaim(`${ns}/data`, "value" in described && described.writable && described.enumerable && described.configurable);
      api.idToken.setCustomClaim(`${ns}/assigned`, event.client.client_id);
      api.idToken.setCustomClaim(`${ns}/deleted`, "request" in event);
      api.idToken.setCustomClaim(`${ns}/copy`, [copy.user.user_id, copy.transaction.requested_scopes, copy.tenant.id]);
      api.idToken.setCustomClaim(`${ns}/frozen`, [Object.isFrozen(event), event.connection.metadata, event.secrets]);
      return;
    }
    case "floating": {
      // Work the action starts and does not await still lands: a login ends once every job ran.
      Promise.resolve().then(() => later(2)).then((n) => api.idToken.setCustomClaim(`${ns}/late`, n));
      // setCustomClaim returns the api object, whether Rust or the shim wrote the command.
      const chained = api.idToken
        .setCustomClaim(`${ns}/a`, 1)
        .idToken.setCustomClaim(`${ns}/b`, { toJSON() { return "written by JSON.stringify"; } });
      api.idToken.setCustomClaim(`${ns}/chained`, chained === api);
      return;
    }
    case "frozen-first": {
      // Frozen before any member is read: members still read, each the same object every time.
      Object.freeze(event);
      let assigned = true;
      try { event.user = {}; } catch (e) { assigned = false; }
      api.idToken.setCustomClaim(`${ns}/frozen`, [
        event.user === event.user,
        event.user.user_id,
        event.user.app_metadata,
        assigned,
      ]);
      return;
    }
    case "chain": {
      // Every method returns the api object, as Auth0's do, so calls chain across namespaces.
      const returned = [
        api.idToken.setCustomClaim(`${ns}/a`, 1),
        api.accessToken.setCustomClaim(`${ns}/b`, { toJSON() { return "x"; } }),
        api.accessToken.addScope("read:chain"),
        api.accessToken.removeScope("email"),
        api.user.setAppMetadata("k", 1),
        api.user.setUserMetadata("k", 2),
        api.multifactor.enable("any"),
        api.authentication.challengeWith({ type: "otp" }),
        api.session.setExpiresAt(Date.now() + 1000),
      ].map((r) => r === api);
      api.idToken.setCustomClaim(`${ns}/c`, 3).accessToken.setCustomClaim(`${ns}/d`, 4);
      api.idToken.setCustomClaim(`${ns}/returned`, returned);
      return;
    }
    case "undefined":
      // An absent metadata value: no claim, as in Auth0, and the login goes on.
      api.idToken.setCustomClaim(`${ns}/missing`, event.user.app_metadata.missing);
      api.accessToken.setCustomClaim(`${ns}/missing`, undefined);
      api.idToken.setCustomClaim(`${ns}/present`, 1);
      return;
    case "console-then-throw":
      console.log("before the throw");
      throw new Error("after the log");
    case "timezone": {
      const at = new Date();
      console.log(at.toLocaleString(), at.toLocaleDateString());
      const options = event.configuration.options;
      at.toLocaleTimeString(event.configuration.locale, options === null ? undefined : options);
      return;
    }
    case "refresh-token":
      api["refresh" + "Token"].revoke("x");
      return;
    case "rules":
      api["ru" + "les"].wasExecuted("rul_1");
      return;
    case "log-secrets":
      console.log(event.secrets);
      console.log("as JSON:", JSON.stringify({ key: event.secrets.api_key }));
      return;
  }
};
