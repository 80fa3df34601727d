/**
 * add-roles: the user's roles into both tokens under the configured namespace.
 *
 * Auth0 post-login Action, written as an Auth0 user would write it. It mirrors
 * rules/add-roles/src/lib.rs and is the JavaScript side of the peer benchmark
 * (benches/peer/node-peer.mjs).
 */
exports.onExecutePostLogin = async (event, api) => {
  const namespace = (event.configuration.namespace || "https://example.com").replace(/\/+$/, "");
  const claim = `${namespace}/roles`;
  const roles = event.authorization?.roles || [];
  api.idToken.setCustomClaim(claim, roles);
  api.accessToken.setCustomClaim(claim, roles);
};
