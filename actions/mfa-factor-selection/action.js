/**
 * MFA factor selection: challenge the user with their preferred factor
 * (user_metadata.preferred_factor) if they enrolled it, else with any of their enrolled factors,
 * else ask them to enroll the configuration's enroll_factor (default otp). Clients listed in
 * skip_clients are left alone. The JavaScript twin of rules/mfa-factor-selection, run with its
 * fixtures.
 *
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
function list(value) {
  if (Array.isArray(value)) return value;
  return typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : [];
}

exports.onExecutePostLogin = async (event, api) => {
  if (list(event.configuration.skip_clients).includes(event.client.client_id)) {
    return;
  }
  const enrolled = event.user.enrolledFactors;
  // The factor as enrolled, keeping its options (a phone's preferredMethod).
  const factor = (type) => {
    const found = enrolled.find((f) => f.type === type);
    return found && found.options && Object.keys(found.options).length > 0
      ? { type, options: found.options }
      : { type };
  };
  const preferred = event.user.user_metadata.preferred_factor;
  if (typeof preferred === 'string' && enrolled.some((f) => f.type === preferred)) {
    const others = enrolled.filter((f) => f.type !== preferred).map((f) => factor(f.type));
    api.authentication.challengeWith(factor(preferred), { additionalFactors: others });
  } else if (enrolled.length > 0) {
    const types = [...new Set(enrolled.map((f) => f.type))];
    api.authentication.challengeWithAny(types.map(factor));
  } else {
    api.authentication.enrollWith({ type: event.configuration.enroll_factor || 'otp' });
  }
};
