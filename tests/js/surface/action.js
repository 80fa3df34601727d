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
      api.authentication.enrollWithAny([{ type: "otp" }]);
      return;
  }
};
